"""Decisions are OpenTelemetry data: log events correlated with the trace, span events, OTLP export."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
import redis
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import sollol_otel
from sollol_otel import RoutingLogger

from .conftest import OtlpSink, read_stream

Recording = Callable[..., RoutingLogger]


@pytest.fixture
def tracer() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_a_decision_inside_a_span_carries_its_trace_and_span_ids(
    recording: Recording,
    keys: tuple[str, str],
    redis_client: redis.Redis,
    tracer: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    logger = recording()
    with tracer[0].get_tracer("router").start_as_current_span("route_request") as span:
        logger.log_route_decision("llama3.2:3b", "ollama", "sufficient_resources")
    sollol_otel.shutdown()
    (event,) = read_stream(redis_client, keys[0])
    assert event.fields["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert event.fields["span_id"] == format(span.get_span_context().span_id, "016x")


def test_a_decision_inside_a_span_is_also_a_span_event(
    recording: Recording, keys: tuple[str, str], tracer: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    logger = recording()
    with tracer[0].get_tracer("router").start_as_current_span("select_node"):
        logger.log_ollama_node_selected("10.0.0.7:11434", "lowest_latency", "llama3.2:3b")
    (span,) = tracer[1].get_finished_spans()
    (event,) = span.events
    assert event.name == "sollol.routing.ollama_node_selected"
    assert event.attributes is not None
    assert event.attributes["gen_ai.request.model"] == "llama3.2:3b"
    assert (event.attributes["server.address"], event.attributes["server.port"]) == ("10.0.0.7", 11434)


def test_a_decision_outside_any_span_has_no_trace_id(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    recording().log_route_decision("m", "ollama", "r")
    sollol_otel.shutdown()
    (event,) = read_stream(redis_client, keys[0])
    assert "trace_id" not in event.fields


def test_a_fallback_names_its_error_type(
    recording: Recording, keys: tuple[str, str], tracer: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    with tracer[0].get_tracer("router").start_as_current_span("route_request"):
        recording().log_fallback("codellama:13b", "ollama", "rpc", "ollama_error: Out of memory")
    (span,) = tracer[1].get_finished_spans()
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["error.type"] == "ollama_error"


def test_with_an_otlp_endpoint_set_decisions_are_exported_over_otlp(
    keys: tuple[str, str], otlp_sink: OtlpSink
) -> None:
    script = (
        "import sollol_otel\n"
        "sollol_otel.configure().log_route_decision('llama3.2:3b', 'ollama', 'sufficient_resources')\n"
        "sollol_otel.shutdown()\n"
    )
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_sink.url}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=15)  # no hang at exit
    logs = otlp_sink.bodies("/v1/logs")
    assert logs, [path for path, _ in otlp_sink.received]
    request = ExportLogsServiceRequest.FromString(logs[0])
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    assert record.event_name == "sollol.routing.route_decision"
    assert record.body.string_value == "🎯 llama3.2:3b → ollama | sufficient_resources"
    resource = {a.key: a.value.string_value for a in request.resource_logs[0].resource.attributes}
    assert resource["service.name"] == "sollol"
    assert resource["service.instance.id"].count("_") >= 2


def test_console_output_prints_none_fields_and_escapes_control_characters(keys: tuple[str, str]) -> None:
    script = (
        "import sollol_otel\n"
        "log = sollol_otel.get_routing_logger()\n"
        "log.log_route_decision(None, None, None)\n"
        "log.log_route_decision('evil\\x1b[2J\\x1b]0;title\\x07', 'ollama', '[bold red]markup[/]')\n"
        "sollol_otel.shutdown()\n"
    )
    env = {**os.environ, "SOLLOL_ROUTING_LOG_CONSOLE": "true"}
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, env=env, capture_output=True, timeout=60, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "model=N/A" in result.stderr
    assert "evil\\x1b[2J\\x1b]0;title\\x07" in result.stderr
    assert "\x1b" not in result.stderr
    assert "[bold red]markup[/]" in result.stderr


def test_enable_console_routing_log_turns_console_output_on(keys: tuple[str, str]) -> None:
    script = (
        "import sollol_otel\n"
        "sollol_otel.get_routing_logger().log_route_decision('before', 'ollama', 'r')\n"
        "sollol_otel.enable_console_routing_log()\n"
        "sollol_otel.get_routing_logger().log_route_decision('after', 'ollama', 'r')\n"
        "sollol_otel.shutdown()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, timeout=60, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "model=after" in result.stderr and "model=before" not in result.stderr


def test_the_bridge_reports_its_delivery_counters_as_otel_metrics(
    recording: Recording, keys: tuple[str, str]
) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    logger = recording(meter_provider=meters)
    for _ in range(3):
        logger.log_route_decision("m", "ollama", "r")
    assert sollol_otel.force_flush(5.0)
    data = reader.get_metrics_data()
    assert data is not None
    values = {
        metric.name: metric.data.data_points[0].value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name.startswith("sollol_otel.bridge.")
    }
    assert values == {
        "sollol_otel.bridge.recorded": 3,
        "sollol_otel.bridge.exported": 3,
        "sollol_otel.bridge.dropped": 0,
        "sollol_otel.bridge.retried": 0,
        "sollol_otel.bridge.backlog": 0,
        "sollol_otel.bridge.healthy": 1,
    }
    meters.shutdown()
