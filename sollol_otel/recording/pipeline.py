"""Assembling the pipeline: OTel providers, our processors and exporters, the Redis writer.

`configure` works both where the application has no OpenTelemetry setup (it builds providers
from the OTEL_* environment, with OTLP exporters when an endpoint is set) and where it has one
(it adds our processor to the application's providers and replaces nothing).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from sollol_otel.attributes import RESOURCE_HOSTNAME, RESOURCE_INSTANCE_ID, RESOURCE_PID, RESOURCE_SERVICE
from sollol_otel.identity import hostname, instance_id
from sollol_otel.recording.exporters.console import ConsoleRoutingExporter
from sollol_otel.recording.exporters.decision_metrics import DecisionMetricsExporter
from sollol_otel.recording.exporters.redis_bridge import RedisBridgeExporter
from sollol_otel.recording.logger import RoutingLogger
from sollol_otel.recording.processors import RealtimeLogRecordProcessor
from sollol_otel.redis import delivery as bridge_metrics
from sollol_otel.redis.client import client_like
from sollol_otel.redis.delivery import BridgeStats
from sollol_otel.redis.writer import RedisWriter
from sollol_otel.settings import OTEL_SDK_DISABLED, Settings

_log = logging.getLogger(__name__)

SCOPE = "sollol_otel"
DEFAULT_SERVICE_NAME = "sollol"
_CONSOLE_SWITCH_WAIT = 1.0  # seconds; switching console output is rare and interactive
_OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")


@dataclass
class _Pipeline:
    settings: Settings
    logger: RoutingLogger
    provider: LoggerProvider | None = None
    writer: RedisWriter | None = None
    processor: RealtimeLogRecordProcessor | None = None
    console: ConsoleRoutingExporter | None = None
    console_processor: RealtimeLogRecordProcessor | None = None
    owned: list[Any] = field(default_factory=list)  # providers we built, and so shut down

    def set_console(self, on: bool) -> None:
        """Console output from the next decision on: what was recorded before is emitted first."""
        if self.provider is None:
            return
        self.logger.flush(_CONSOLE_SWITCH_WAIT)
        if self.console_processor is not None:
            self.console_processor.force_flush(int(_CONSOLE_SWITCH_WAIT * 1000))
        if self.console is None:
            self.console = ConsoleRoutingExporter(identity())
            self.console_processor = RealtimeLogRecordProcessor([self.console])
            self.provider.add_log_record_processor(self.console_processor)
        self.console.active = on

    def stats(self) -> BridgeStats:
        writer = self.writer.stats() if self.writer else None
        queue_dropped = self.logger.dropped + (self.processor.dropped if self.processor else 0)
        return BridgeStats(
            exported=writer.exported if writer else 0,
            dropped=queue_dropped + (writer.dropped if writer else 0),
            retried=writer.retried if writer else 0,
            backlog=(writer.backlog if writer else 0) + (self.processor.pending if self.processor else 0),
            connected=writer.connected if writer else False,
        )

    def shutdown(self, timeout: float) -> None:
        """Flush within `timeout` overall, then stop; the writer counts what it could not deliver."""
        deadline = time.monotonic() + timeout
        self.logger.close(timeout)
        for processor in (self.processor, self.console_processor):
            if processor is not None:
                processor.force_flush(int(max(0.0, deadline - time.monotonic()) * 1000))
        if self.writer is not None:
            self.writer.close(max(0.0, deadline - time.monotonic()))
        for processor in (self.processor, self.console_processor):
            if processor is not None:
                processor.shutdown()
        for provider in self.owned:
            provider.shutdown()


_lock = threading.RLock()
_pipeline: _Pipeline | None = None
_observed_meters: set[int] = set()
_exit_registered = False


def identity() -> dict[str, Any]:
    """Resource attributes that name this process, for providers that lack them."""
    return {RESOURCE_INSTANCE_ID: instance_id(), RESOURCE_HOSTNAME: hostname(), RESOURCE_PID: os.getpid()}


def _resource(service_name: str | None) -> Resource:
    attributes: dict[str, Any] = identity()
    if service_name or not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[RESOURCE_SERVICE] = service_name or DEFAULT_SERVICE_NAME
    return Resource.create(attributes)


def _otlp_wanted() -> bool:
    return any(os.environ.get(name) for name in _OTLP_ENDPOINT_VARIABLES)


def _grpc() -> bool:
    return os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip() == "grpc"


def _otlp_exporters() -> tuple[Any, Any, Any]:
    """Log, span and metric exporters for the protocol OTEL_EXPORTER_OTLP_PROTOCOL names."""
    if _grpc():
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # type: ignore[assignment]
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    return OTLPLogExporter(), OTLPSpanExporter(), OTLPMetricExporter()


def _providers(
    resource: Resource,
    logger_provider: LoggerProvider | None,
    tracer_provider: Any,
    meter_provider: Any,
) -> tuple[LoggerProvider, Any, list[Any]]:
    """The application's providers where it has SDK ones, else ours (with OTLP when configured)."""
    owned: list[Any] = []
    found_logs = logger_provider or get_logger_provider()
    otlp = _otlp_exporters() if _otlp_wanted() else None
    if isinstance(found_logs, LoggerProvider):
        logs = found_logs
    else:
        logs = LoggerProvider(resource=resource, shutdown_on_exit=False)
        if otlp:
            logs.add_log_record_processor(BatchLogRecordProcessor(otlp[0]))
        owned.append(logs)
    if tracer_provider is None and otlp and not isinstance(trace.get_tracer_provider(), TracerProvider):
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(otlp[1]))
        trace.set_tracer_provider(tracer_provider)
        owned.append(tracer_provider)
    meters = meter_provider or metrics.get_meter_provider()
    if meter_provider is None and otlp and not isinstance(meters, MeterProvider):
        meters = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(otlp[2])])
        metrics.set_meter_provider(meters)
        owned.append(meters)
    return logs, meters, owned


def configure(
    *,
    redis_url: str | None = None,
    stream: str | None = None,
    channel: str | None = None,
    stream_maxlen: int | None = None,
    backlog: int | None = None,
    enabled: bool | None = None,
    console: bool | None = None,
    service_name: str | None = None,
    logger_provider: LoggerProvider | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    redis_client: Any = None,
) -> RoutingLogger:
    """Set up (or set up again) routing event recording; arguments override the environment."""
    global _pipeline
    settings = Settings.from_env().with_overrides(
        redis_url=redis_url, stream=stream, channel=channel, stream_maxlen=stream_maxlen, backlog=backlog,
        enabled=enabled, console=console,
    )  # fmt: skip
    with _lock:
        if _pipeline is not None:
            _pipeline.shutdown(timeout=2.0)
            _pipeline = None
        sdk_disabled = OTEL_SDK_DISABLED.read()
        if not settings.enabled or sdk_disabled:
            _pipeline = _Pipeline(settings, RoutingLogger(None))
            return _pipeline.logger
        logs, meters, owned = _providers(
            _resource(service_name), logger_provider, tracer_provider, meter_provider
        )
        client = client_like(redis_client) if redis_client is not None else None
        writer = RedisWriter(settings, client=client)
        processor = RealtimeLogRecordProcessor(
            [RedisBridgeExporter(writer, identity()), DecisionMetricsExporter(meter_provider)]
        )
        logs.add_log_record_processor(processor)
        pipeline = _Pipeline(settings, RoutingLogger(None), logs, writer, processor, owned=owned)
        pipeline.logger = RoutingLogger(
            logs.get_logger(SCOPE), console_switch=pipeline.set_console, console_output=settings.console
        )
        if settings.console:
            pipeline.set_console(True)
        if id(meters) not in _observed_meters:  # instruments live as long as their provider: register once
            _observed_meters.add(id(meters))
            bridge_metrics.observe(meters.get_meter(SCOPE), bridge_stats)
        _pipeline = pipeline
        _flush_at_exit()
        return pipeline.logger


def _flush_at_exit() -> None:
    """Registered on first configure, after the application's providers: atexit runs it first (LIFO),
    so decisions still queued reach those providers before they shut down."""
    global _exit_registered
    if not _exit_registered:
        _exit_registered = True
        atexit.register(shutdown, 2.0)


def get_routing_logger(redis_client: Any = None, console_output: bool | None = None) -> RoutingLogger:
    """The process-wide logger, configured from the environment on first use (SOLLOL's signature)."""
    pipeline = _pipeline
    if pipeline is not None and redis_client is None and console_output is None:
        return pipeline.logger  # the decorators' per-call path: no lock
    with _lock:
        if _pipeline is None:
            return configure(redis_client=redis_client, console=console_output)
        if console_output is not None:
            _pipeline.logger.console_output = console_output
        return _pipeline.logger


def enable_console_routing_log() -> None:
    """Also print every routing decision to stderr, in SOLLOL's console layout."""
    get_routing_logger().console_output = True


def bridge_stats() -> BridgeStats:
    """Delivery counters of the current pipeline (all zero when none runs or recording is off).

    Lock-free: the meter provider's reader calls it while `shutdown` holds the lock.
    """
    pipeline = _pipeline
    if pipeline is None:
        return BridgeStats(exported=0, dropped=0, retried=0, backlog=0, connected=False)
    return pipeline.stats()


def force_flush(timeout: float = 5.0) -> bool:
    """Wait until every decision recorded so far is in Redis; False if that took longer than `timeout`."""
    with _lock:
        pipeline = _pipeline
    if pipeline is None or pipeline.processor is None or pipeline.writer is None:
        return True
    deadline = time.monotonic() + timeout
    if not pipeline.logger.flush(timeout):
        return False
    if not pipeline.processor.force_flush(int(max(0.0, deadline - time.monotonic()) * 1000)):
        return False
    return pipeline.writer.flush(max(0.0, deadline - time.monotonic()))


def shutdown(timeout: float = 5.0) -> None:
    """Deliver what is pending (bounded by `timeout`) and stop background work."""
    global _pipeline
    with _lock:
        if _pipeline is not None:
            _pipeline.shutdown(timeout)
            _pipeline = None
