"""Hostile stream entries: `tail` and `stats` show or count every one and go on, never a traceback."""

from __future__ import annotations

import json

import pytest
import redis
from cli.tail_cli import Running, json_lines, run
from poison import POISON, write_poison
from sollol_events import sollol_event, write


@pytest.fixture
def poisoned(keys: tuple[str, str], redis_client: redis.Redis) -> list[str]:
    write(redis_client, keys[0], sollol_event(reason="before"))
    ids = write_poison(redis_client, keys[0])
    write(redis_client, keys[0], sollol_event(reason="after"))
    return ids


def test_tail_history_shows_the_events_and_names_each_skipped_entry(poisoned: list[str]) -> None:
    result = run("tail", "--history", "100", "-o", "json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    events = json_lines(result.stdout)
    assert (events[0]["reason"], events[-1]["reason"]) == ("before", "after")
    assert all(json.dumps(e, allow_nan=False) for e in events)  # strict JSON lines
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    assert f"skipped entry {poisoned[list(POISON).index('deep_nesting')]}" in result.stderr


def test_tail_text_output_keeps_control_characters_out_of_the_terminal(poisoned: list[str]) -> None:
    result = run("tail", "--history", "100", "--color", "never")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout


def test_tail_follow_goes_on_past_every_poison_entry(
    keys: tuple[str, str], redis_client: redis.Redis, start: type[Running]
) -> None:
    tail = start("tail", "-o", "json")
    tail.wait_for(lambda: tail.stderr_has("following"))
    write_poison(redis_client, keys[0])
    write(redis_client, keys[0], sollol_event(reason="after"))
    tail.wait_for(lambda: any(e.get("reason") == "after" for e in tail.json_events()))
    assert tail.process.poll() is None


def test_stats_counts_the_events_and_the_skipped_entries(poisoned: list[str]) -> None:
    result = run("stats", "-o", "json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    stats = json.loads(result.stdout)
    assert stats["skipped"] >= 4 and stats["events"] + stats["skipped"] == len(POISON) + 2
