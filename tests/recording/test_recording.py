"""Recording decisions: every SOLLOL method reaches the stream and the channel, as SOLLOL writes it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from redis_servers import RedisServer

import sollol_otel
from sollol_otel import EventType, RoutingLogger
from sollol_otel.wire import MAX_STRING_CHARS, TRUNCATION_MARK

from .conftest import raw_stream, read_stream

Recording = Callable[..., RoutingLogger]


def record_one_of_each(logger: RoutingLogger) -> None:
    logger.log_route_decision(
        "llama3.2:3b", "ollama", "sufficient_resources (estimated 2.5GB)", parameter_count=3
    )
    logger.log_route_decision("llama3.2:3b", "ollama", "cached", cached=True)
    logger.log_fallback("codellama:13b", "ollama", "rpc", "ollama_error: Out of memory")
    logger.log_coordinator_start("llama3.1:70b", 3, coordinator_host="127.0.0.1", coordinator_port=18080)
    logger.log_coordinator_stop("llama3.1:70b")
    logger.log_ollama_node_selected(
        "192.168.1.21:11434", "lowest_latency (15ms)", "llama3.2:3b", confidence=0.92
    )
    logger.log_rpc_backend_selected("10.0.0.5", 50052, "least_loaded")
    logger.log_model_switch("llama3.1:8b", "llama3.1:70b", "llamacpp")
    logger.log_task_queued("t1", "llama3.2:3b")
    logger.log_task_start("t1", "llama3.2:3b", "worker-1")
    logger.log_task_complete("t1", "llama3.2:3b", "worker-1", 1.25)
    logger.log_worker_load("worker-1", 2, cpu_percent=35.0, memory_mb=2048.0)


def test_every_event_type_reaches_the_stream_in_order(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    record_one_of_each(recording())
    sollol_otel.shutdown()
    events = read_stream(redis_client, keys[0])
    assert [e.event_type for e in events] == [
        "ROUTE_DECISION", "CACHE_HIT", "FALLBACK_TRIGGERED", "COORDINATOR_START", "COORDINATOR_STOP",
        "OLLAMA_NODE_SELECTED", "RPC_BACKEND_SELECTED", "MODEL_SWITCH", "TASK_QUEUED", "TASK_START",
        "TASK_COMPLETE", "WORKER_LOAD",
    ]  # fmt: skip
    assert {t.value for t in EventType} == {e.event_type for e in events}


def test_events_carry_sollol_keys_with_sollol_values(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    record_one_of_each(recording())
    sollol_otel.shutdown()
    by_type = {e["event_type"]: e for e in raw_stream(redis_client, keys[0])}
    assert by_type["FALLBACK_TRIGGERED"]["backend"] == "rpc"
    assert by_type["FALLBACK_TRIGGERED"]["from_backend"] == "ollama"
    assert by_type["COORDINATOR_START"]["rpc_backends"] == 3
    assert by_type["COORDINATOR_START"]["coordinator_port"] == 18080
    assert by_type["OLLAMA_NODE_SELECTED"]["node_url"] == "192.168.1.21:11434"
    assert by_type["RPC_BACKEND_SELECTED"]["backend_host"] == "10.0.0.5"
    assert by_type["RPC_BACKEND_SELECTED"]["backend_port"] == 50052
    assert by_type["RPC_BACKEND_SELECTED"]["model"] is None
    assert by_type["MODEL_SWITCH"]["from_model"] == "llama3.1:8b"
    assert by_type["CACHE_HIT"]["cached"] is True
    assert by_type["TASK_COMPLETE"]["duration"] == 1.25
    route = by_type["ROUTE_DECISION"]
    assert list(route)[:7] == [
        "timestamp",
        "instance_id",
        "hostname",
        "pid",
        "event_type",
        "model",
        "backend",
    ]
    hostname, pid, suffix = route["instance_id"].rsplit("_", 2)
    assert (hostname, int(pid), len(suffix)) == (route["hostname"], route["pid"], 8)
    assert route["instance_id"] == sollol_otel.get_routing_logger().instance_id


def test_the_message_is_the_seeds_one_line_format(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    record_one_of_each(recording())
    sollol_otel.shutdown()
    messages = {e["event_type"]: e["message"] for e in raw_stream(redis_client, keys[0])}
    assert messages["ROUTE_DECISION"] == "🎯 llama3.2:3b → ollama | sufficient_resources (estimated 2.5GB)"
    assert messages["CACHE_HIT"] == "💾 llama3.2:3b → ollama (cached)"
    assert messages["FALLBACK_TRIGGERED"] == "⚠️  codellama:13b: ollama → rpc | ollama_error: Out of memory"
    assert messages["COORDINATOR_START"] == "🚀 Coordinator started: llama3.1:70b (3 RPC backends)"
    assert messages["COORDINATOR_STOP"] == "⏹️  Coordinator stopped: llama3.1:70b"
    assert messages["OLLAMA_NODE_SELECTED"] == "📡 llama3.2:3b → 192.168.1.21:11434 | lowest_latency (15ms)"


def test_the_channel_carries_the_same_json_as_the_stream(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    stream, channel = keys
    pubsub = redis_client.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"  # type: ignore[index]
    recording().log_route_decision("m", "ollama", "r")
    sollol_otel.shutdown()
    message = pubsub.get_message(timeout=2)
    pubsub.close()
    assert message is not None
    (_, fields), = redis_client.xrange(stream)  # fmt: skip
    assert message["data"] == fields[b"event"]


def test_the_stream_is_trimmed_to_about_maxlen(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    logger = recording(stream_maxlen=100)
    for i in range(2_000):
        logger.log_route_decision(f"m{i}", "ollama", "r")
    sollol_otel.shutdown()
    assert 100 <= redis_client.xlen(keys[0]) < 400


def test_delivery_counters_are_readable(recording: Recording, keys: tuple[str, str]) -> None:
    logger = recording()
    for _ in range(10):
        logger.log_route_decision("m", "ollama", "r")
    assert sollol_otel.force_flush(2.0)
    stats = sollol_otel.bridge_stats()
    assert (stats.exported, stats.dropped, stats.backlog, stats.connected) == (10, 0, 0, True)


@pytest.mark.parametrize(
    ("variable", "value"), [("SOLLOL_ROUTING_LOG", "false"), ("OTEL_SDK_DISABLED", "true")]
)
def test_recording_off_writes_nothing(
    variable: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    recording: Recording,
    keys: tuple[str, str],
    redis_client: redis.Redis,
) -> None:
    monkeypatch.setenv(variable, value)
    logger = recording()
    logger.log_route_decision("m", "ollama", "r")
    sollol_otel.shutdown()
    assert not logger.enabled
    assert redis_client.xlen(keys[0]) == 0


def test_get_routing_logger_is_one_logger_per_process(recording: Recording, keys: tuple[str, str]) -> None:
    assert sollol_otel.get_routing_logger() is sollol_otel.get_routing_logger()


def test_an_existing_sdk_provider_gets_our_processor_and_keeps_its_own(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    app_exporter = InMemoryLogRecordExporter()
    app_provider = LoggerProvider()
    app_provider.add_log_record_processor(SimpleLogRecordProcessor(app_exporter))
    logger = recording(logger_provider=app_provider)
    logger.log_route_decision("m", "ollama", "r")
    app_provider.get_logger("app").emit(body="an application log, not a routing event")
    sollol_otel.shutdown()
    bodies = [r.log_record.body for r in app_exporter.get_finished_logs()]
    assert sorted(bodies) == ["an application log, not a routing event", "🎯 m → ollama | r"]
    assert [e.event_type for e in read_stream(redis_client, keys[0])] == ["ROUTE_DECISION"]
    app_provider.shutdown()


def test_metadata_json_cannot_carry_is_stored_as_text(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    class Node:
        def __str__(self) -> str:
            return "Node(10.0.0.1)"

    recording().log_route_decision("m", "ollama", "r", node=Node(), extra={"a": [1, 2]}, tags=["x", 1, None])
    sollol_otel.shutdown()
    (event,) = raw_stream(redis_client, keys[0])
    assert event["node"] == "Node(10.0.0.1)"
    assert json.loads(event["extra"]) == {"a": [1, 2]}
    assert json.loads(event["tags"]) == ["x", 1, None]


def test_none_fields_are_recorded_as_null(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    recording().log_route_decision(None, None, None)  # type: ignore[arg-type]
    sollol_otel.shutdown()
    (event,) = raw_stream(redis_client, keys[0])
    assert (event["model"], event["backend"]) == (None, None)
    assert event["message"] == "🎯 N/A → N/A | N/A"


def test_megabyte_strings_are_truncated_at_the_documented_limit(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    recording().log_route_decision("m" * 1_000_000, "ollama", "r" * 1_000_000)
    sollol_otel.shutdown()
    (event,) = raw_stream(redis_client, keys[0])
    assert len(event["model"]) == MAX_STRING_CHARS and event["model"].endswith(TRUNCATION_MARK)
    assert len(event["reason"]) == MAX_STRING_CHARS


def test_control_characters_survive_the_wire_unchanged(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    hostile = "llama\x1b[2J\x1b]0;pwned\x07\u202e:3b"
    recording().log_route_decision(hostile, "ollama", "r")
    sollol_otel.shutdown()
    (event,) = raw_stream(redis_client, keys[0])
    assert event["model"] == hostile


def test_metadata_named_like_a_header_key_does_not_overwrite_it(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    recording().log_route_decision("m", "ollama", "r", timestamp="yesterday", pid="not a pid")
    sollol_otel.shutdown()
    (event,) = raw_stream(redis_client, keys[0])
    assert event["timestamp"] != "yesterday" and event["timestamp_metadata"] == "yesterday"
    assert isinstance(event["pid"], int) and event["pid_metadata"] == "not a pid"


def test_shutdown_returns_within_its_timeout_when_redis_is_gone(
    recording: Recording, keys: tuple[str, str]
) -> None:
    logger = recording(redis_url="redis://127.0.0.1:1")
    logger.log_route_decision("m", "ollama", "r")
    started = time.monotonic()
    sollol_otel.shutdown(timeout=0.5)
    assert time.monotonic() - started < 3.0


def test_a_redis_client_handed_to_get_routing_logger_is_where_events_go(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    application_client = redis.Redis.from_url(private_redis.url, decode_responses=True)  # as SOLLOL makes it
    sollol_otel.get_routing_logger(redis_client=application_client).log_route_decision("m", "ollama", "r")
    assert sollol_otel.force_flush(5.0)
    assert application_client.xlen(keys[0]) == 1
    application_client.close()
