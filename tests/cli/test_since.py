"""`--since` values (durations back from now, or points in time), and how far back they reach:
into the history past the stream's start."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
import redis
from cli.tail_cli import Running, clock_ahead, json_lines, run
from history_events import STEP_MS, Seeded
from sollol_events import sollol_event, write

from sollol_otel.filters import EventFilter, parse_since

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "back"),
    [("30s", timedelta(seconds=30)), ("10m", timedelta(minutes=10)), ("2h", timedelta(hours=2)),
     ("1h30m", timedelta(minutes=90)), ("1d", timedelta(days=1)), ("1.5h", timedelta(minutes=90))],
)  # fmt: skip
def test_a_duration_counts_back_from_now(value: str, back: timedelta) -> None:
    assert parse_since(value, NOW) == NOW - back


def test_an_iso_time_with_an_offset_is_taken_as_written() -> None:
    assert parse_since("2026-11-27T10:00:00Z", NOW) == datetime(2026, 11, 27, 10, tzinfo=timezone.utc)


def test_an_iso_time_without_an_offset_is_local_time() -> None:
    assert parse_since("2026-11-27T10:00:00", NOW) == datetime(2026, 11, 27, 10).astimezone()


@pytest.mark.parametrize("value", ["", "10", "5x", "ten minutes", "m10"])
def test_anything_else_is_refused_with_the_accepted_forms(value: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_since(value, NOW)


@pytest.mark.parametrize(
    ("args", "event_filter"),
    [(("--model", "llama3.1"), EventFilter(model="llama3.1")),
     (("--node", "10.0.0.1"), EventFilter(node="10.0.0.1")),
     ((), EventFilter())],
)  # fmt: skip
def test_since_7d_reaches_past_the_streams_start_into_the_history(
    seeded: Seeded, start: Callable[..., Running], args: tuple[str, ...], event_filter: EventFilter
) -> None:
    expected = [entry_id for entry_id, _ in seeded.matching(event_filter)]
    tail = start("tail", "--since", "7d", *args, "-o", "json")
    tail.wait_for(lambda: len(tail.stdout) >= len(expected) and tail.stderr_has("following"), timeout=60)
    assert [event["stream_id"] for event in tail.json_events()] == expected  # then live, nothing twice


def test_since_within_the_stream_shows_just_that_range(seeded: Seeded) -> None:
    newest_ms = int(seeded.entries[-1][0].partition("-")[0])
    since = datetime.fromtimestamp((newest_ms - 100 * STEP_MS) / 1000, tz=timezone.utc).isoformat()
    result = run("tail", "--since", since, "--history", "1000", "-o", "json")
    assert [event["stream_id"] for event in json_lines(result.stdout)] == [
        entry_id for entry_id, _ in seeded.matching(EventFilter(), newest_ms - 100 * STEP_MS)
    ]


def test_a_duration_counts_back_from_redis_clock_not_the_readers(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    ids = write(redis_client, keys[0], *(sollol_event(n=n) for n in range(3)))
    result = run("tail", "--since", "10m", "--history", "100", "-o", "json", env=clock_ahead("+1d"))
    assert [event["stream_id"] for event in json_lines(result.stdout)] == ids


def test_stats_since_counts_back_from_redis_clock_not_the_readers(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    now_ms = int(redis_client.time()[0]) * 1000
    redis_client.xadd(keys[0], {"event": json.dumps(sollol_event())}, id=f"{now_ms - 7_200_000}-0")
    write(redis_client, keys[0], *(sollol_event(n=n) for n in range(3)))
    result = run("stats", "--since", "10m", "-o", "json", env=clock_ahead("-1d"))  # behind: 2h ago counts
    assert json.loads(result.stdout)["events"] == 3
