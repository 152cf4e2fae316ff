"""Recording at the edges of a process: signal handlers, exit, shutdown, reconfiguration, fork,
and integers no OTel attribute can carry."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
import redis
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from redis_servers import RedisServer

import sollol_otel
from sollol_otel import RoutingLogger

from .conftest import OtlpSink, balanced, raw_stream
from .test_fork import in_child

Recording = Callable[..., RoutingLogger]
#: Generous: a hang is forever, a loaded machine takes seconds.
NO_HANG = 120


def run(script: str, **environment: str) -> dict[str, Any]:
    """Run `script` in a fresh interpreter; its last stdout line, as JSON."""
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        check=False,  # the assertion below shows stderr
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=NO_HANG,
    )
    assert process.returncode == 0, process.stderr
    outcome: dict[str, Any] = json.loads(process.stdout.splitlines()[-1])
    outcome["stderr"] = process.stderr
    return outcome


LEDGER = """
def ledger():
    s = sollol_otel.bridge_stats()
    return {"recorded": s.recorded, "exported": s.exported, "dropped_by": dict(s.dropped_by),
            "balanced": s.recorded == s.exported + s.dropped + s.backlog}
"""

SIGNALS = (
    """
import json, signal
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
trace.set_tracer_provider(TracerProvider())
import sollol_otel
from sollol_otel.instrumentation import record_decision, routing_span
"""
    + LEDGER
    + """
logger = sollol_otel.get_routing_logger()
fired = 0

def handler(signum, frame):  # records as the router does: through the logger, or a decorated call
    global fired
    fired += 1
    if fired % 2:
        logger.log_route_decision("from the handler", "ollama", "signal")
    else:
        request("from the handler")

@routing_span()
def request(model):
    return select(model)

@record_decision("OLLAMA_NODE_SELECTED", node_url=lambda node: node)
def select(model):
    return "10.0.0.1:11434"

signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
calls = 0
with trace.get_tracer("router").start_as_current_span("requests"):
    while calls < 20_000 and (calls < 2_000 or fired < 1_000):
        RECORD
        calls += 1
        if calls % 200 == 0:  # signals land in flushes too; and every decision counts below
            sollol_otel.force_flush(60)
signal.setitimer(signal.ITIMER_REAL, 0, 0)
flushed = sollol_otel.force_flush(60)
print(json.dumps({"calls": calls, "fired": fired, "flushed": flushed, "ledger": ledger()}))
"""
)


@pytest.mark.parametrize(
    "call",
    ['logger.log_route_decision("from the loop", "ollama", "r")', 'request("llama3.2:3b")'],
    ids=["logger", "decorators"],
)
def test_recording_from_a_signal_handler_that_interrupted_a_recording_never_hangs(
    call: str, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    outcome = run(SIGNALS.replace("RECORD", call), SOLLOL_ROUTING_STREAM_MAXLEN="100000")
    assert outcome["flushed"] and outcome["fired"] > 0, outcome
    recorded = outcome["calls"] + outcome["fired"]
    assert outcome["ledger"] == {
        "recorded": recorded,
        "exported": recorded,
        "dropped_by": {},
        "balanced": True,
    }
    models = [event["model"] for event in raw_stream(redis_client, keys[0])]
    assert models.count("from the handler") == outcome["fired"]
    assert "ended span" not in outcome["stderr"] and "Traceback" not in outcome["stderr"], outcome["stderr"]


def test_a_stop_handler_that_records_and_exits_in_the_middle_of_a_recording_keeps_its_decision(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    logger = recording()

    def on_stop(signum: int, frame: object) -> None:  # a router's graceful stop: say so, then exit
        logger.log_coordinator_stop("llama3.2:3b", reason="SIGUSR1")
        raise SystemExit(0)

    class Arrives:
        def __str__(self) -> str:  # converted inside the recording: the signal lands there
            signal.raise_signal(signal.SIGUSR1)
            return "never"

    previous = signal.signal(signal.SIGUSR1, on_stop)
    try:
        with pytest.raises(SystemExit):
            logger.log_route_decision("interrupted", "ollama", "r", node=Arrives())
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert sollol_otel.force_flush(10.0)
    assert [event["event_type"] for event in raw_stream(redis_client, keys[0])] == ["COORDINATOR_STOP"]
    assert balanced(sollol_otel.bridge_stats())


def test_decisions_recorded_in_an_atexit_handler_after_ours_reach_the_stream(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    script = (
        """
import atexit, json
import sollol_otel
"""
        + LEDGER
        + """
def at_exit():  # registered before the first use: runs after our own exit hook
    held.log_route_decision("held logger at exit", "ollama", "r")
    sollol_otel.get_routing_logger().log_route_decision("fresh call at exit", "ollama", "r")
    print(json.dumps(ledger()))

atexit.register(at_exit)
held = sollol_otel.get_routing_logger()
held.log_route_decision("before exit", "ollama", "r")
"""
    )
    outcome = run(script)
    models = [event["model"] for event in raw_stream(redis_client, keys[0])]
    assert models == ["before exit", "held logger at exit", "fresh call at exit"]
    assert outcome["recorded"] == outcome["exported"] == 3 and outcome["balanced"], outcome


def test_decisions_recorded_at_exit_while_redis_is_away_are_counted_as_not_delivered(
    keys: tuple[str, str],
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    script = (
        """
import atexit, json
import sollol_otel
"""
        + LEDGER
        + """
def at_exit():
    held.log_route_decision("at exit", "ollama", "r")
    print(json.dumps(ledger()))

atexit.register(at_exit)
held = sollol_otel.get_routing_logger()
"""
    )
    outcome = run(script, SOLLOL_REDIS_URL=f"redis://127.0.0.1:{port}", SOLLOL_ROUTING_SHUTDOWN_TIMEOUT="1")
    assert outcome["recorded"] == 1 and outcome["balanced"], outcome
    assert outcome["dropped_by"] == {"not delivered at shutdown": 1}
    assert outcome["stderr"].count("recorded at interpreter exit could not be written") == 1


def test_a_first_use_at_exit_records_nothing_says_so_once_and_raises_nothing(keys: tuple[str, str]) -> None:
    script = """
import atexit, json
from sollol_otel import bridge_stats, get_routing_logger

def at_exit():  # the OTel SDK cannot start now: it detects its resource on an executor
    for _ in range(3):
        get_routing_logger().log_route_decision("first use at exit", "ollama", "r")
    print(json.dumps({"state": bridge_stats().state}))

atexit.register(at_exit)
"""
    outcome = run(script)
    assert outcome["state"] == "off"
    assert outcome["stderr"].count("before any recording was set up, are not recorded") == 1
    assert "Traceback" not in outcome["stderr"], outcome["stderr"]


def test_a_logger_held_across_shutdown_counts_what_it_records_as_dropped_and_says_so_once(
    recording: Recording, keys: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    logger = recording()
    logger.log_route_decision("before", "ollama", "r")
    sollol_otel.shutdown(5.0)
    with caplog.at_level(logging.WARNING, logger="sollol_otel"):
        for i in range(3):
            logger.log_route_decision(f"after-{i}", "ollama", "r")
    stats = sollol_otel.bridge_stats()
    assert (stats.recorded, stats.exported, stats.dropped_by) == (4, 1, {"after shutdown": 3})
    assert balanced(stats) and stats.state == "stopped"
    assert sum("recorded after shutdown() are dropped" in r.getMessage() for r in caplog.records) == 1


def test_routing_records_others_emit_after_shutdown_are_counted_as_dropped_after_shutdown(
    recording: Recording, keys: tuple[str, str]
) -> None:
    provider = LoggerProvider()  # the application's: our processor stays in it after shutdown
    recording(logger_provider=provider).log_route_decision("before", "ollama", "r")
    sollol_otel.shutdown(5.0)
    provider.get_logger("other").emit(event_name="sollol.routing.route_decision", body="after")
    stats = sollol_otel.bridge_stats()
    assert (stats.recorded, stats.exported, stats.dropped_by) == (2, 1, {"after shutdown": 1})
    assert balanced(stats)
    provider.shutdown()


def test_a_logger_held_across_a_reconfiguration_records_into_the_new_pipeline(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    held = recording()
    recording()
    held.log_route_decision("held", "ollama", "r")
    assert sollol_otel.force_flush(10.0)
    assert [event["model"] for event in raw_stream(redis_client, keys[0])] == ["held"]
    stats = sollol_otel.bridge_stats()
    assert (stats.recorded, stats.exported) == (1, 1) and balanced(stats)


def spans_in(sink: OtlpSink) -> dict[str, list[str]]:
    """Each span's name, and the names of its events."""
    return {
        span.name: [event.name for event in span.events]
        for body in sink.bodies("/v1/traces")
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }


def log_bodies_in(sink: OtlpSink) -> list[str]:
    return [
        record.body.string_value
        for body in sink.bodies("/v1/logs")
        for resource in ExportLogsServiceRequest.FromString(body).resource_logs
        for scope in resource.scope_logs
        for record in scope.log_records
    ]


def metric_names_in(sink: OtlpSink) -> set[str]:
    return {
        metric.name
        for body in sink.bodies("/v1/metrics")
        for resource in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def test_configuring_again_keeps_traces_log_events_metrics_and_redis_delivery_working(
    keys: tuple[str, str],
    redis_client: redis.Redis,
    private_redis: RedisServer,
    otlp_sink: OtlpSink,
    other_otlp_sink: OtlpSink,
) -> None:
    script = f"""
import json, os
from opentelemetry import trace
import sollol_otel

tracer = trace.get_tracer("router")
first = sollol_otel.configure()
with tracer.start_as_current_span("request-1"):
    first.log_route_decision("first", "ollama", "r")
os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = {other_otlp_sink.url!r}
second = sollol_otel.configure(redis_url={private_redis.url!r})
with tracer.start_as_current_span("request-2"):
    second.log_route_decision("second", "ollama", "r")
    first.log_route_decision("held", "ollama", "r")
flushed = sollol_otel.force_flush(10)
s = sollol_otel.bridge_stats()
sollol_otel.shutdown(10)
print(json.dumps({{"flushed": flushed, "recorded": s.recorded, "exported": s.exported}}))
"""
    outcome = run(script, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_sink.url)
    assert (outcome["flushed"], outcome["recorded"], outcome["exported"]) == (True, 2, 2)
    assert [event["model"] for event in raw_stream(redis_client, keys[0])] == ["first"]
    other = redis.Redis.from_url(private_redis.url)
    assert [event["model"] for event in raw_stream(other, keys[0])] == ["second", "held"]
    other.close()
    event = "sollol.routing.route_decision"
    assert spans_in(otlp_sink) == {"request-1": [event]}
    assert spans_in(other_otlp_sink) == {"request-2": [event, event]}
    assert log_bodies_in(otlp_sink) == ["🎯 first → ollama | r"]
    assert sorted(log_bodies_in(other_otlp_sink)) == ["🎯 held → ollama | r", "🎯 second → ollama | r"]
    assert "sollol_otel.bridge.exported" in metric_names_in(other_otlp_sink)


def test_a_forked_childs_instance_id_keeps_the_hostname_pid_8hex_form(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    recording().log_route_decision("parent", "ollama", "r")
    assert sollol_otel.force_flush(5.0)

    def child() -> dict[str, Any]:
        sollol_otel.get_routing_logger().log_route_decision("child", "ollama", "r")
        return {"flushed": sollol_otel.force_flush(10.0), "pid": os.getpid()}

    outcome = in_child(child)
    assert outcome["flushed"]
    parent, child_event = raw_stream(redis_client, keys[0])
    for event, pid in ((parent, os.getpid()), (child_event, outcome["pid"])):
        assert re.fullmatch(rf"{re.escape(socket.gethostname())}_{pid}_[0-9a-f]{{8}}", event["instance_id"])
        assert event["pid"] == pid


def test_a_forked_childs_otlp_resource_names_it_hostname_pid_8hex(
    keys: tuple[str, str], otlp_sink: OtlpSink
) -> None:
    script = """
import json, os
import sollol_otel
sollol_otel.get_routing_logger().log_route_decision("parent", "ollama", "r")
pid = os.fork()
if pid == 0:
    sollol_otel.get_routing_logger().log_route_decision("child", "ollama", "r")
    sollol_otel.shutdown(10)
    os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({"child": pid}))
"""
    outcome = run(script, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_sink.url)
    named = {
        record.body.string_value: {a.key: a.value for a in resource.resource.attributes}
        for body in otlp_sink.bodies("/v1/logs")
        for resource in ExportLogsServiceRequest.FromString(body).resource_logs
        for scope in resource.scope_logs
        for record in scope.log_records
    }
    child = named["🎯 child → ollama | r"]
    pattern = rf"{re.escape(socket.gethostname())}_{outcome['child']}_[0-9a-f]{{8}}"
    assert re.fullmatch(pattern, child["service.instance.id"].string_value)
    assert child["process.pid"].int_value == outcome["child"]


def test_events_through_the_applications_own_provider_are_named_hostname_pid_8hex(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    provider = LoggerProvider()  # the SDK's resource: service.instance.id is a bare UUID
    recording(logger_provider=provider).log_route_decision("m", "ollama", "r")
    assert sollol_otel.force_flush(5.0)
    (event,) = raw_stream(redis_client, keys[0])
    assert event["instance_id"] == sollol_otel.get_routing_logger().instance_id
    provider.shutdown()


HUGE = {"huge": 2**70, "unsigned": 2**64 - 1, "negative": -(2**63) - 1, "listed": [1, 2**65]}


def test_integers_past_64_bits_in_metadata_reach_the_stream_as_text(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    recording().log_route_decision("m", "ollama", "r", fits=2**63 - 1, **HUGE)
    assert sollol_otel.force_flush(5.0)
    (event,) = raw_stream(redis_client, keys[0])
    assert event["fits"] == 2**63 - 1
    assert {key: event[key] for key in HUGE} == {
        "huge": str(2**70),
        "unsigned": str(2**64 - 1),
        "negative": str(-(2**63) - 1),
        "listed": json.dumps([1, str(2**65)]),
    }
    assert sollol_otel.bridge_stats().rejected == {"integer past 64 bits": 4}


def test_integers_past_64_bits_in_metadata_reach_otlp_as_text_without_exporter_errors(
    keys: tuple[str, str], otlp_sink: OtlpSink
) -> None:
    script = f"""
import json
import sollol_otel
sollol_otel.get_routing_logger().log_route_decision("m", "ollama", "r", **{HUGE!r})
sollol_otel.shutdown(10)
print(json.dumps({{}}))
"""
    outcome = run(script, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_sink.url)
    assert "Traceback" not in outcome["stderr"] and "rror" not in outcome["stderr"], outcome["stderr"]
    (body,) = otlp_sink.bodies("/v1/logs")
    record = ExportLogsServiceRequest.FromString(body).resource_logs[0].scope_logs[0].log_records[0]
    attributes = {a.key: a.value for a in record.attributes}
    assert attributes["sollol.huge"].string_value == str(2**70)
    assert attributes["sollol.unsigned"].string_value == str(2**64 - 1)
