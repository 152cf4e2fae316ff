"""The dashboard's filters in `tail` and `stats` (search, node, trace, partial model names), and the
reasons they give when a filter matched nothing."""

from __future__ import annotations

import json

import pytest
import redis
from cli.tail_cli import json_lines, run
from sollol_events import sollol_event, write

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def written(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(
        redis_client,
        keys[0],
        sollol_event(reason="fits", trace_id=TRACE),
        sollol_event(
            event_type="OLLAMA_NODE_SELECTED",
            node_url="http://10.0.0.21:11434",
            reason="lowest_latency",
            trace_id=TRACE,
        ),
        sollol_event(
            event_type="FALLBACK_TRIGGERED",
            model="codellama:13b",
            backend="rpc",
            reason="ollama_error: Out of memory",
        ),
    )


@pytest.mark.parametrize(
    ("options", "reasons"),
    [
        (["--search", "OUT OF memory"], ["ollama_error: Out of memory"]),
        (["--q", "codellama"], ["ollama_error: Out of memory"]),
        (["--node", "10.0.0.21"], ["lowest_latency"]),
        (["--trace-id", TRACE], ["fits", "lowest_latency"]),
        (["--model", "llama"], ["fits", "lowest_latency"]),
        (
            ["--event-type", "FALLBACK_TRIGGERED", "--event-type", "ollama_node_selected"],
            ["lowest_latency", "ollama_error: Out of memory"],
        ),
    ],
    ids=["search", "q", "node", "trace", "model-prefix", "event-types"],
)
def test_tail_takes_the_dashboards_filters(written: None, options: list[str], reasons: list[str]) -> None:
    result = run("tail", "--history", "10", "-o", "json", *options)
    assert [event["reason"] for event in json_lines(result.stdout)] == reasons


def test_tail_says_why_nothing_matched(written: None) -> None:
    result = run("tail", "--history", "10", "--model", "3b", "--color", "never")
    assert (result.returncode, result.stdout) == (0, "")
    assert "nothing matched: model '3b' is only part of codellama:13b, llama3.2:3b" in result.stderr


def test_tail_names_an_event_type_nobody_wrote(written: None) -> None:
    result = run("tail", "--history", "10", "--event-type", "CACHE_HITS", "--color", "never")
    assert (
        "no CACHE_HITS event was written (CACHE_HITS: not a type SOLLOL writes); types present:"
        in result.stderr
    )


def test_tail_gives_no_reasons_when_something_matched(written: None) -> None:
    assert "nothing matched" not in run("tail", "--history", "10", "--search", "fits").stderr


def test_stats_take_the_search_and_say_why_nothing_matched(written: None) -> None:
    found = json.loads(run("stats", "-o", "json", "--search", "memory").stdout)
    assert (found["by_event_type"], found["hints"]) == ({"FALLBACK_TRIGGERED": 1}, [])
    empty = json.loads(run("stats", "-o", "json", "--search", "zebra").stdout)
    assert empty["hints"] == ["no event's model, backend, node, reason, message or instance contains 'zebra'"]
    text = run("stats", "--backend", "RPC", "--color", "never").stdout
    assert "nothing matched: backend matches exactly, and 'RPC' was written as rpc" in text
