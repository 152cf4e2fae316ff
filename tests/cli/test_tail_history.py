"""`sollol-otel tail --history N`: the last N matching events, oldest first, then exit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis
from cli.tail_cli import environment, json_lines, run
from history_events import Seeded
from sollol_events import sollol_event, write

from sollol_otel.filters import EventFilter


def test_history_shows_the_last_n_events_oldest_first(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], *(sollol_event(reason=f"r{n}") for n in range(10)))
    result = run("tail", "--history", "3", "--color", "never")
    assert result.returncode == 0
    reasons = [line.split("reason: ")[1] for line in result.stdout.splitlines() if "reason: " in line]
    assert reasons == ["r7", "r8", "r9"]


def test_history_output_has_the_seeds_layout(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(redis_client, keys[0], sollol_event())
    result = run("tail", "--history", "1", "--color", "never")
    assert result.stdout.splitlines() == [
        "[12:03:45.123] ROUTE_DECISION       │ model=llama3.2:3b          │ backend=ollama",
        "  ├─ instance: workstation_42_a1b2c3d4",
        "  ├─ reason: sufficient_resources (estimated 2.5GB)",
        "  └─ parameters: 3B",
        "",
    ]


def test_history_with_a_model_filter_shows_the_last_n_matching_events(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    events = [sollol_event(model="llama3.1:70b" if n % 10 == 0 else "llama3.2:3b", n=n) for n in range(3000)]
    write(redis_client, keys[0], *events)
    result = run("tail", "--history", "5", "--model", "llama3.1:70b", "-o", "json")
    assert [event["n"] for event in json_lines(result.stdout)] == [2950, 2960, 2970, 2980, 2990]


def test_event_type_filter_is_repeatable_and_case_insensitive(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    kinds = ["ROUTE_DECISION", "CACHE_HIT", "FALLBACK_TRIGGERED", "COORDINATOR_START"]
    write(redis_client, keys[0], *(sollol_event(event_type=kind) for kind in kinds))
    result = run(
        "tail",
        "--history",
        "10",
        "-o",
        "json",
        "--event-type",
        "cache_hit",
        "--event-type",
        "Fallback_Triggered",
    )
    assert [event["event_type"] for event in json_lines(result.stdout)] == ["CACHE_HIT", "FALLBACK_TRIGGERED"]


def test_instance_filter_matches_by_prefix(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    instances = ["gpu1_100_aaaa1111", "gpu1_200_bbbb2222", "gpu2_100_cccc3333"]
    write(redis_client, keys[0], *(sollol_event(instance_id=instance) for instance in instances))
    result = run("tail", "--history", "10", "-o", "json", "--instance", "gpu1_")
    assert [event["instance_id"] for event in json_lines(result.stdout)] == instances[:2]


def test_backend_filter_accepts_any_backend_name(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(redis_client, keys[0], sollol_event(backend="vllm"), sollol_event(backend="ollama"))
    result = run("tail", "--history", "10", "-o", "json", "--backend", "vllm")
    assert [event["backend"] for event in json_lines(result.stdout)] == ["vllm"]


def test_json_output_is_one_event_object_per_line_with_its_stream_id(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    ids = write(redis_client, keys[0], sollol_event(n=1), sollol_event(n=2))
    lines = run("tail", "--history", "10", "-o", "json").stdout.splitlines()
    assert [json.loads(line) for line in lines] == [
        {**sollol_event(n=1), "stream_id": ids[0]},
        {**sollol_event(n=2), "stream_id": ids[1]},
    ]


def test_since_leaves_out_older_events(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    now_ms = int(redis_client.time()[0]) * 1000
    for minutes_ago in (120, 30, 5):
        redis_client.xadd(
            keys[0],
            {"event": json.dumps(sollol_event(age=minutes_ago))},
            id=f"{now_ms - minutes_ago * 60_000}-0",
        )
    result = run("tail", "--history", "10", "--since", "1h", "-o", "json")
    assert [event["age"] for event in json_lines(result.stdout)] == [30, 5]


def test_a_bad_since_value_is_a_usage_error_naming_the_option(keys: tuple[str, str]) -> None:
    result = run("tail", "--history", "1", "--since", "yesterday")
    assert result.returncode == 2
    assert "--since" in result.stderr and "yesterday" in result.stderr


def test_malformed_entries_are_counted_and_the_rest_still_shown(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], sollol_event(n=1))
    redis_client.xadd(keys[0], {"event": "not json"})
    redis_client.xadd(keys[0], {"other": "field"})
    redis_client.xadd(keys[0], {"event": json.dumps([1, 2])})
    write(redis_client, keys[0], sollol_event(n=2, model="other"))
    write(redis_client, keys[0], sollol_event(n=3))
    result = run("tail", "--history", "10", "-o", "json", "--model", "llama3.2:3b")
    assert result.returncode == 0
    assert [event["n"] for event in json_lines(result.stdout)] == [1, 3]
    assert "2 shown, 1 filtered out, 3 skipped as malformed, 0 missed" in result.stderr


def test_an_empty_stream_shows_nothing_and_succeeds(keys: tuple[str, str]) -> None:
    result = run("tail", "--history", "10")
    assert (result.returncode, result.stdout) == (0, "")
    assert "0 shown" in result.stderr


def test_a_key_that_is_not_a_stream_is_a_clear_error(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    redis_client.set(keys[0], "a string")
    result = run("tail", "--history", "10")
    assert result.returncode == 1
    assert "WRONGTYPE" in result.stderr and keys[0] in result.stderr


@pytest.mark.parametrize(
    ("args", "event_filter"),
    [((), EventFilter()), (("--model", "llama3.1"), EventFilter(model="llama3.1")),
     (("--event-type", "cache_hit", "--backend", "rpc"),
      EventFilter.build(event_types="CACHE_HIT", backend="rpc"))],
)  # fmt: skip
def test_history_n_past_the_streams_start_goes_on_in_the_history(
    seeded: Seeded, args: tuple[str, ...], event_filter: EventFilter
) -> None:
    result = run("tail", "--history", "2000", *args, "-o", "json", timeout=120)
    assert result.returncode == 0, result.stderr
    expected = [entry_id for entry_id, _ in seeded.matching(event_filter)][-2000:]
    assert [event["stream_id"] for event in json_lines(result.stdout)] == expected


def test_history_within_the_stream_does_not_load_the_history_engine(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], *(sollol_event(n=n) for n in range(50)))
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sollol_otel", "tail", "--history", "20", "-o", "json"],
        capture_output=True, text=True, env=environment(), timeout=60, check=False,
    )  # fmt: skip
    assert len(json_lines(result.stdout)) == 20
    assert "duckdb" not in result.stderr and "sollol_otel.history" not in result.stderr
