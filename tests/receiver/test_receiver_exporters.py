"""The official OTLP/HTTP exporters of the OTel Python SDK, sending to `sollol-otel collector`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from receiver.receiver_harness import RunningReceiver

from sollol_otel import RoutingLogger
from sollol_otel.receiver import ReceiverConfig

StreamEvents = Callable[[], list[dict[str, Any]]]

RESOURCE = Resource.create(
    {
        "service.name": "router-a",
        "service.instance.id": "gpu-host_4242_abcd1234",
        "host.name": "gpu-host",
        "process.pid": 4242,
    }
)


class Sender:
    """An application's SDK: a LoggerProvider and a TracerProvider exporting over OTLP/HTTP."""

    def __init__(self, url: str, *, logs: bool = True, traces: bool = True, **exporter_args: Any) -> None:
        self.logger_provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
        self.tracer_provider = TracerProvider(resource=RESOURCE)
        if logs:
            exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", timeout=5, **exporter_args)
            self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        if traces:
            span_exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=5, **exporter_args)
            self.tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        self.tracer = self.tracer_provider.get_tracer("test-router")
        self.otel_logger = self.logger_provider.get_logger("test-router")
        self.routing = RoutingLogger(self.otel_logger)

    def flush(self) -> None:
        assert self.routing.flush(10)  # the routing logger emits its log events from its own thread
        assert self.logger_provider.force_flush(10_000)
        assert self.tracer_provider.force_flush(10_000)

    def close(self) -> None:
        self.routing.close(5, then=lambda decision: None)  # nothing is recorded after the test
        self.logger_provider.shutdown()
        self.tracer_provider.shutdown()


@pytest.fixture
def sender() -> Iterator[Callable[..., Sender]]:
    made: list[Sender] = []

    def make(url: str, **kwargs: Any) -> Sender:
        made.append(Sender(url, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def app(receiver: RunningReceiver, sender: Callable[..., Sender]) -> Sender:
    """An application exporting logs and traces to the test's receiver."""
    return sender(receiver.url)


def test_each_routing_event_lands_once_with_its_trace_id(
    receiver: RunningReceiver, app: Sender, stream_events: StreamEvents
) -> None:
    with app.tracer.start_as_current_span("chat request") as span:
        app.routing.log_route_decision("llama3.2:3b", "ollama", "sufficient_resources (estimated 2.5GB)")
        app.routing.log_fallback("codellama:13b", "ollama", "rpc", "ollama_error: Out of memory")
        app.routing.log_ollama_node_selected("http://192.168.1.21:11434", "lowest_latency", "llama3.2:3b")
    app.flush()
    receiver.flush()

    events = stream_events()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert [e["event_type"] for e in events] == [
        "ROUTE_DECISION",
        "FALLBACK_TRIGGERED",
        "OLLAMA_NODE_SELECTED",
    ]
    assert {e["trace_id"] for e in events} == {trace_id}
    # the span events are the log events' twins: counted, not written again
    assert receiver.counted("sollol_receiver_events_total", signal="traces", outcome="duplicate") == 3
    assert events[1]["from_backend"] == "ollama" and events[1]["backend"] == "rpc"
    assert events[0]["instance_id"] == "gpu-host_4242_abcd1234"
    assert events[0]["message"] == "🎯 llama3.2:3b → ollama | sufficient_resources (estimated 2.5GB)"


def test_event_outside_any_span_lands_once_without_trace_id(
    receiver: RunningReceiver, app: Sender, stream_events: StreamEvents
) -> None:
    app.routing.log_coordinator_start("llama3.1:70b", 3)
    app.flush()
    receiver.flush()

    [event] = stream_events()
    assert event["event_type"] == "COORDINATOR_START" and event["rpc_backends"] == 3
    assert "trace_id" not in event


def test_span_events_alone_reach_redis(
    receiver: RunningReceiver,
    sender: Callable[..., Sender],
    stream_events: StreamEvents,
) -> None:
    app = sender(receiver.url, logs=False)
    with app.tracer.start_as_current_span("chat request") as span:
        app.routing.log_rpc_backend_selected("10.0.0.7", 50052, "least_loaded")
    app.flush()
    receiver.flush()

    [event] = stream_events()
    assert event["event_type"] == "RPC_BACKEND_SELECTED"
    assert (event["backend_host"], event["backend_port"]) == ("10.0.0.7", 50052)
    assert event["trace_id"] == f"{span.get_span_context().trace_id:032x}"


def test_other_logs_and_span_events_are_ignored(
    receiver: RunningReceiver, app: Sender, stream_events: StreamEvents
) -> None:
    with app.tracer.start_as_current_span("chat request") as span:
        app.otel_logger.emit(
            LogRecord(body="ordinary application log", attributes={"sollol.backend": "ollama"})
        )
        app.otel_logger.emit(LogRecord(event_name="gen_ai.client.inference.operation.details", body="x"))
        span.add_event("exception", {"exception.message": "boom"})
    app.flush()
    receiver.flush()

    assert stream_events() == []
    assert receiver.counted("sollol_receiver_requests_total", signal="logs", code="200") >= 1


def test_gzip_compressed_exports_are_accepted(
    receiver: RunningReceiver,
    sender: Callable[..., Sender],
    stream_events: StreamEvents,
) -> None:
    app = sender(receiver.url, compression=Compression.Gzip)
    with app.tracer.start_as_current_span("chat request"):
        app.routing.log_model_switch("llama3.2:3b", "qwen2.5:7b", "ollama")
    app.flush()
    receiver.flush()

    [event] = stream_events()
    assert (event["from_model"], event["model"]) == ("llama3.2:3b", "qwen2.5:7b")


@pytest.mark.parametrize(
    ("presented", "written"),
    [("s3cret-token", ["COORDINATOR_STOP"]), ("wrong", [])],
    ids=["right-token", "wrong-token"],
)
def test_exported_events_are_written_only_with_the_right_token(
    start_receiver: Callable[..., RunningReceiver],
    sender: Callable[..., Sender],
    stream_events: StreamEvents,
    presented: str,
    written: list[str],
) -> None:
    receiver = start_receiver(ReceiverConfig(token="s3cret-token"))
    app = sender(receiver.url, headers={"Authorization": f"Bearer {presented}"})
    app.routing.log_coordinator_stop("llama3.1:70b")
    assert app.routing.flush(10)
    app.logger_provider.force_flush(10_000)  # False when the receiver refuses
    receiver.flush()

    assert [e["event_type"] for e in stream_events()] == written
