"""`sollol-otel stats` and `sollol-otel emit-test`, run as the real commands."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import redis
from cli.tail_cli import environment, json_lines, run
from history_events import STEP_MS, Seeded
from redis_servers import free_port
from sollol_events import sollol_event, write

from sollol_otel.events import EventType
from sollol_otel.filters import EventFilter


def test_stats_counts_by_type_backend_model_and_instance(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(
        redis_client, keys[0],
        sollol_event(), sollol_event(instance_id="b_1_x"), sollol_event(model="llama3.1:70b", backend="rpc"),
        sollol_event(event_type="WORKER_LOAD", model=None, backend=None),
    )  # fmt: skip
    stats = json.loads(run("stats", "-o", "json").stdout)
    assert stats["by_event_type"] == {"ROUTE_DECISION": 3, "WORKER_LOAD": 1}
    assert stats["by_backend"] == {"ollama": 2, "rpc": 1, "(none)": 1}
    assert stats["by_model"] == {"llama3.2:3b": 2, "llama3.1:70b": 1, "(none)": 1}
    assert stats["by_instance"] == {"workstation_42_a1b2c3d4": 3, "b_1_x": 1}


def test_stats_gives_the_fallback_rate_and_top_reasons(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    fallback = {"event_type": "FALLBACK_TRIGGERED", "from_backend": "ollama", "backend": "rpc"}
    write(
        redis_client, keys[0],
        *(sollol_event() for _ in range(3)), sollol_event(event_type="CACHE_HIT"),
        sollol_event(**fallback, reason="ollama_error: Out of memory"),
        sollol_event(**fallback, reason="ollama_error: Out of memory"),
        sollol_event(**fallback, reason="timeout"),
    )  # fmt: skip
    stats = json.loads(run("stats", "-o", "json").stdout)
    assert (stats["routing_decisions"], stats["fallbacks"], stats["fallback_rate"]) == (4, 3, 0.75)
    assert stats["top_fallback_reasons"] == [
        {"reason": "ollama_error: Out of memory", "count": 2},
        {"reason": "timeout", "count": 1},
    ]


def test_stats_says_what_an_event_costs_redis_for_sizing_the_retention(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], *(sollol_event(n=n) for n in range(100)))
    memory = json.loads(run("stats", "-o", "json").stdout)["redis_memory"]
    assert memory["entries"] == 100
    assert memory["bytes_per_event"] == round(int(redis_client.memory_usage(keys[0])) / 100, 1)
    assert "per event" in run("stats").stdout


def test_stats_since_counts_only_the_window(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    now_ms = int(redis_client.time()[0]) * 1000
    redis_client.xadd(keys[0], {"event": json.dumps(sollol_event())}, id=f"{now_ms - 7_200_000}-0")
    redis_client.xadd(keys[0], {"event": json.dumps(sollol_event(event_type="CACHE_HIT"))}, id=f"{now_ms}-0")
    stats = json.loads(run("stats", "--since", "30m", "-o", "json").stdout)
    assert stats["by_event_type"] == {"CACHE_HIT": 1}


def test_stats_text_shows_the_rate_and_names_as_plain_text(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], sollol_event(model="[red]x[/red]"))
    result = run("stats", "--color", "never")
    assert "fallback rate: 0.0% (0 fallbacks / 1 routing decisions)" in result.stdout
    assert "[red]x[/red]" in result.stdout


def test_stats_on_an_unreachable_redis_exits_1_without_the_password(keys: tuple[str, str]) -> None:
    result = run("stats", env=environment(SOLLOL_REDIS_URL=f"redis://:pw-123@127.0.0.1:{free_port()}"))
    assert result.returncode == 1 and "cannot read" in result.stderr and "pw-123" not in result.stderr


def test_emit_test_records_every_event_type_through_the_pipeline(keys: tuple[str, str]) -> None:
    emitted = run("emit-test")
    assert emitted.returncode == 0, emitted.stderr
    shown = json_lines(run("tail", "--history", "100", "-o", "json").stdout)
    assert {event["event_type"] for event in shown} == {kind.value for kind in EventType}
    assert all(event["instance_id"] == shown[0]["instance_id"] for event in shown)


def test_emit_test_fails_clearly_when_redis_is_unreachable(keys: tuple[str, str]) -> None:
    result = run("emit-test", "--redis-url", f"redis://:pw-123@127.0.0.1:{free_port()}")
    assert result.returncode == 1 and "cannot reach" in result.stderr and "pw-123" not in result.stderr


def test_stats_window_is_read_from_stream_ids_not_the_writers_clock(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    now_ms = int(redis_client.time()[0]) * 1000
    redis_client.xadd(
        keys[0], {"event": json.dumps(sollol_event(timestamp="1999-01-01T00:00:00"))}, id=f"{now_ms}-0"
    )
    window = json.loads(run("stats", "-o", "json").stdout)["window"]
    assert window["first"] == window["last"] and window["first"].startswith(
        datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    )


def test_stats_name_the_top_instances_and_count_the_rest_beside_them(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], *(sollol_event(instance_id=f"host_{n}_aaaa") for n in range(8)),
          *(sollol_event(instance_id="other") for _ in range(3)))  # fmt: skip
    stats = json.loads(run("stats", "--top", "3", "-o", "json").stdout)
    assert len(stats["by_instance"]) == 3 and stats["by_instance"]["other"] == 3
    assert (stats["bounded"], stats["other"]) == (True, {"by_instance": 6})


@pytest.mark.parametrize(
    ("args", "event_filter"),
    [((), EventFilter()), (("--model", "llama"), EventFilter(model="llama")),
     (("--backend", "Ollama", "--event-type", "fallback_triggered"),
      EventFilter.build(backend="Ollama", event_types="FALLBACK_TRIGGERED"))],
)  # fmt: skip
def test_stats_over_history_equal_a_full_scan(
    seeded: Seeded, args: tuple[str, ...], event_filter: EventFilter
) -> None:
    stats = json.loads(run("stats", *args, "--top", "1000", "-o", "json").stdout)
    expected = seeded.counts(event_filter)
    assert stats["events"] == sum(expected["event_type"].values()) > 0
    for key in ("event_type", "backend", "model", "instance"):
        assert stats[f"by_{key}"] == dict(expected[key]), key
    assert (stats["bounds"], stats["history"]["bytes"] > 0) == ([], True)


def test_stats_since_over_history_count_from_that_stream_id(seeded: Seeded) -> None:
    since_ms = int(seeded.entries[1000][0].partition("-")[0]) - STEP_MS // 2
    since = datetime.fromtimestamp(since_ms / 1000, tz=timezone.utc).isoformat()
    stats = json.loads(run("stats", "--since", since, "-o", "json").stdout)
    assert stats["events"] == len(seeded.matching(EventFilter(), since_ms))


def test_stats_text_says_what_a_day_of_history_costs_on_disk(seeded: Seeded) -> None:
    result = run("stats", "--color", "never")
    assert result.returncode == 0, result.stderr
    assert "a day at the current rate takes ≈" in result.stdout and "on disk" in result.stdout


def test_stats_warn_when_the_stream_would_trim_entries_before_the_indexer_reads_them(
    seeded: Seeded, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    now_ms = int(redis_client.time()[0]) * 1000
    pipe = redis_client.pipeline(transaction=False)
    for n in range(1000):  # 1,000 events/s for the last second: 8 s of them would need 8,000 entries
        pipe.xadd(keys[0], {"event": b"{}"}, id=f"{now_ms - 999 + n}-1")
    pipe.execute()
    redis_client.xtrim(keys[0], maxlen=1000, approximate=False)
    result = run("stats", "--color", "never")
    assert "entries may be trimmed before they are indexed" in result.stdout
    assert json.loads(run("stats", "-o", "json").stdout)["history"]["trim_warning"]


def test_stats_do_not_warn_when_the_stream_outlasts_the_indexers_lag(seeded: Seeded) -> None:
    assert json.loads(run("stats", "-o", "json").stdout)["history"]["trim_warning"] is None


def test_stats_window_over_history_runs_from_the_first_to_the_last_matching_stream_id(seeded: Seeded) -> None:
    matching = seeded.matching(EventFilter(model="codellama"))
    window = json.loads(run("stats", "--model", "codellama", "-o", "json").stdout)["window"]
    first_ms, last_ms = (int(matching[i][0].partition("-")[0]) for i in (0, -1))
    assert (window["first"], window["last"]) == (
        datetime.fromtimestamp(first_ms / 1000, tz=timezone.utc).isoformat(),
        datetime.fromtimestamp(last_ms / 1000, tz=timezone.utc).isoformat(),
    )
