"""Assembling the pipeline: OTel providers, our processors and exporters, the Redis writer.

`configure` works both where the application has no OpenTelemetry setup (it builds providers
from the OTEL_* environment, with OTLP exporters when an endpoint is set) and where it has one
(it adds our processor to the application's providers and replaces nothing).

`shutdown(timeout)` keeps to its timeout whatever Redis or an OTLP endpoint does (the providers
we built are shut down on threads it stops waiting for), and says once what was not delivered.
A forked child records like any other process: its stages start empty, with their own threads.

The global tracer and meter providers we install are the process's for good (OpenTelemetry lets
them be set once, and one shut down drops spans for good): a new configuration keeps them and puts
its own OTLP span and metric exports in ours. Decisions a logger records after its pipeline shut down go to
the current pipeline, are written at once at interpreter exit, or are counted as dropped.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from sollol_otel.attributes import (
    MAX_METADATA_KEYS,
    RESOURCE_HOSTNAME,
    RESOURCE_INSTANCE_ID,
    RESOURCE_PID,
    RESOURCE_SERVICE,
)
from sollol_otel.diagnostics import Trouble
from sollol_otel.identity import hostname, instance_id, renew_after_fork
from sollol_otel.recording import metrics_endpoint
from sollol_otel.recording.after_shutdown import AFTER_SHUTDOWN, AfterShutdown
from sollol_otel.recording.exporters.console import ConsoleRoutingExporter
from sollol_otel.recording.exporters.decision_metrics import DecisionMetricsExporter
from sollol_otel.recording.exporters.redis_bridge import RedisBridgeExporter
from sollol_otel.recording.logger import Decision, RoutingLogger, marked
from sollol_otel.recording.processors import RealtimeLogRecordProcessor
from sollol_otel.redis import delivery
from sollol_otel.redis.client import client_like
from sollol_otel.redis.delivery import BridgeStats
from sollol_otel.redis.urls import redact_url
from sollol_otel.redis.writer import RedisWriter
from sollol_otel.settings import OTEL_SDK_DISABLED, Settings

_log = logging.getLogger(__name__)

SCOPE = "sollol_otel"
DEFAULT_SERVICE_NAME = "sollol"
_CONSOLE_SWITCH_WAIT = 1.0  # seconds; switching console output is rare and interactive
_OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
#: Attributes beside the caller's metadata: ours (event id, model, backend, server address and
#: port, error type, null keys) and a logging method's own fields (up to 4), plus one spare. The
#: metadata cap leaves room for them under the SDK's attribute limit.
_OWN_ATTRIBUTES = 12


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
    spans: BatchSpanProcessor | None = None  # this configuration's OTLP span export, in our TracerProvider
    measures: MetricExporter | None = None  # this configuration's OTLP metric export, in our MeterProvider
    after: AfterShutdown | None = None  # what its logger records once it is shut down

    def set_console(self, on: bool) -> None:
        """Console output from the next decision on: what was recorded before is emitted first."""
        if self.provider is None:
            return
        self.logger.flush(_CONSOLE_SWITCH_WAIT)
        if self.console_processor is not None:
            self.console_processor.force_flush(int(_CONSOLE_SWITCH_WAIT * 1000))
        if self.console is None:
            self.console = ConsoleRoutingExporter(identity)
            self.console_processor = RealtimeLogRecordProcessor([self.console])
            self.provider.add_log_record_processor(self.console_processor)
        self.console.active = on

    def stats(self) -> BridgeStats:
        """The writer's ledger, with the stages in front of it: the emitter, the OTel SDK, the processor."""
        if self.writer is None or self.processor is None:
            return BridgeStats(exported=0, dropped=0, retried=0, backlog=0, connected=False)
        logger, emitter, into = self.logger, self.logger.emitter, self.processor.handoff
        assert emitter is not None
        received = into.handled + into.dropped + into.late + into.abandoned + into.pending
        recorded = (
            logger.record_failed
            + emitter.handled
            + emitter.dropped
            + emitter.late
            + emitter.abandoned
            + emitter.pending
        )
        upstream = {
            delivery.RECORD_FAILED: logger.record_failed,
            delivery.QUEUE_FULL: emitter.dropped + into.dropped,
            delivery.EMIT_FAILED: logger.emit_failed,
            delivery.NOT_PASSED_ON: max(0, logger.emitted - received),
            delivery.NOT_DELIVERED_AT_SHUTDOWN: emitter.abandoned + into.abandoned,
            AFTER_SHUTDOWN: emitter.late + into.late,
        }
        stats = self.writer.stats().behind(
            recorded + max(0, received - logger.emitted),  # routing records others emitted through OTel
            upstream,
            emitter.pending + into.pending,
        )
        stats = replace(stats, rejected=logger.rejected)
        return stats if self.after is None else self.after.added_to(stats)

    def shutdown(self, timeout: float) -> _Pipeline:
        """Deliver within `timeout` overall, then stop; say once what was not delivered, and why.

        Returns itself, stopped: its ledger stays readable, its logger writes at exit."""
        return marked(self._stop, timeout)  # it takes the locks a recording takes

    def _stop(self, timeout: float) -> _Pipeline:
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        self.logger.close(timeout, then=self._after_shutdown)
        for processor in (self.processor, self.console_processor):
            if processor is not None:
                processor.handoff.flush(remaining())
        if self.writer is not None:
            self.writer.close(remaining())
        for processor in (self.processor, self.console_processor):
            if processor is not None:
                processor.handoff.close(remaining())
                processor.shutdown()
        final = self.stats()
        _report_losses(final, self.writer.redis_state if self.writer else None, self.settings, timeout)
        stops: list[Callable[[], object]] = [provider.shutdown for provider in self.owned]
        if self.spans is not None:
            if _tracing is not None and _tracing.current is self.spans:
                _tracing.current = None
            stops.append(self.spans.shutdown)
        if _metering is not None:
            stops.append(_metering.force_flush)  # through the current configuration's metric export
        if self.measures is not None and (_measuring is None or _measuring.current is not self.measures):
            stops.append(self.measures.shutdown)  # replaced by a later configuration's
        unfinished = _within(deadline, stops)
        if unfinished:
            _log.warning(
                "OTLP export to %s did not finish within the %.1f s shutdown timeout; what it held is lost",
                _otlp_endpoint(), timeout,
            )  # fmt: skip
        return self

    def _after_shutdown(self, decision: Decision) -> None:
        """A decision its logger recorded after this pipeline shut down: to the current pipeline if there
        is one (a logger held across a reconfiguration), else written at once at exit, else dropped."""
        current = _pipeline
        if current is not None and current is not self:
            current.logger.forward(decision)
        elif self.after is not None and _at_exit():
            self.after.write(decision)
        elif self.after is not None:
            self.after.drop()

    def _after_fork(self) -> None:
        """In a forked child, a multiprocessing worker delivers at exit."""
        workers = sys.modules.get("multiprocessing.util")
        if workers is not None:  # a Pool worker runs these after clearing inherited finalizers
            workers.register_after_fork(self, _deliver_at_worker_exit)


def _deliver_at_worker_exit(pipeline: _Pipeline) -> None:
    """multiprocessing ends its workers with os._exit, past atexit: its own finalizers deliver instead."""
    import multiprocessing.util

    multiprocessing.util.Finalize(None, shutdown, args=(pipeline.settings.shutdown_timeout,), exitpriority=10)


def _within(deadline: float, calls: list[Callable[[], object]]) -> int:
    """Run `calls` side by side on daemon threads until `deadline`; how many had not finished."""
    threads = [
        threading.Thread(target=_quietly, args=(call,), name="sollol-otel-shutdown", daemon=True)
        for call in calls
    ]
    unstarted = 0
    for thread in threads:
        try:
            thread.start()
        except RuntimeError:  # Python 3.12 at interpreter exit starts no thread: that call is given up
            unstarted += 1
    for thread in threads:
        if thread.ident is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
    return unstarted + sum(thread.is_alive() for thread in threads)


def _quietly(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:
        _log.exception("sollol-otel: shutting down %r failed", call)


def _report_losses(
    final: BridgeStats, redis: tuple[str, str | None] | None, settings: Settings, timeout: float
) -> None:
    """One line for what shutdown could not deliver: how many, and what Redis was doing then."""
    lost = final.dropped_by.get(delivery.NOT_DELIVERED_AT_SHUTDOWN, 0)
    unconfirmed = final.dropped_by.get(delivery.UNCONFIRMED_AT_SHUTDOWN, 0)
    if not lost and not unconfirmed:
        return
    if redis is not None and redis[0] in (delivery.UNREACHABLE, delivery.REFUSED):
        why = f"Redis at {redact_url(settings.redis_url)} {redis[0]} ({redis[1]})"
    else:
        why = f"the {timeout:.1f} s shutdown timeout was reached"
    _log.warning(
        "%d routing events not delivered: %s%s",
        lost + unconfirmed, why,
        f"; {unconfirmed} of them were sent, unanswered: they may be in the stream" if unconfirmed else "",
    )  # fmt: skip


def _otlp_endpoint() -> str:
    return next(
        (os.environ[name] for name in _OTLP_ENDPOINT_VARIABLES if os.environ.get(name)), "the OTLP endpoint"
    )


_lock = threading.RLock()
_pipeline: _Pipeline | None = None
_final: _Pipeline | None = None  # the pipeline shut down last: its ledger, its logger at exit
_observed_meters: set[int] = set()
_unrecorded = Trouble(_log, unit="routing events")
_exit_registered = False


class _SpanExport(SpanProcessor):
    """The OTLP span export inside the TracerProvider we install: each configuration puts its own here."""

    current: BatchSpanProcessor | None = None

    def on_end(self, span: ReadableSpan) -> None:
        current = self.current
        if current is not None:
            current.on_end(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        current = self.current
        return current is None or current.force_flush(timeout_millis)


class _MetricExport(MetricExporter):
    """The OTLP metric export inside the MeterProvider we install: each configuration puts its own here."""

    def __init__(self, first: MetricExporter) -> None:
        super().__init__(first._preferred_temporality, first._preferred_aggregation)
        self.current: MetricExporter | None = first

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **_: Any
    ) -> MetricExportResult:
        current = self.current
        if current is None:  # OTLP is off in the current configuration
            return MetricExportResult.SUCCESS
        return current.export(metrics_data, timeout_millis=timeout_millis)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        current = self.current
        return current is None or current.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
        """Our MeterProvider is never shut down; each configuration's exporter is, once replaced."""


_tracing: _SpanExport | None = None  # in the global TracerProvider, when we installed it
_metering: MeterProvider | None = None  # the global MeterProvider, when we installed it
_measuring: _MetricExport | None = None  # in it


def _at_exit() -> bool:
    """Whether the interpreter is exiting: threading's shutdown has run, atexit hooks are running."""
    return not threading.main_thread().is_alive()


def _name_after_fork(provider: Any) -> None:
    """In a forked child, `provider`'s resource names the child as SOLLOL does (`hostname_pid_8hex`).

    Registered once the provider exists, so it runs after the SDK's own fork hook, which puts a bare
    UUID in `service.instance.id`.
    """
    reference = weakref.ref(provider)

    def rename() -> None:
        update = getattr(reference(), "_update_resource", None)
        if callable(update):
            update(Resource({RESOURCE_INSTANCE_ID: instance_id(), RESOURCE_PID: os.getpid()}))

    os.register_at_fork(after_in_child=rename)


def _renew_lock() -> None:
    global _lock
    _lock = threading.RLock()  # another thread may have held it at the fork, and does not exist here


os.register_at_fork(after_in_child=_renew_lock)


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
) -> tuple[LoggerProvider, Any, list[Any], BatchSpanProcessor | None, MetricExporter | None]:
    """The application's providers where it has SDK ones, else ours (with OTLP when configured), and
    this configuration's span and metric exports where the providers are ours."""
    global _tracing, _metering, _measuring
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
        _name_after_fork(logs)
    spans = None
    if tracer_provider is None and otlp:
        if _tracing is None and not isinstance(trace.get_tracer_provider(), TracerProvider):
            tracing = TracerProvider(resource=resource, shutdown_on_exit=False)  # ours, bounded
            _tracing = _SpanExport()
            tracing.add_span_processor(_tracing)
            trace.set_tracer_provider(tracing)
            _name_after_fork(tracing)
        if _tracing is not None:
            spans = _tracing.current = BatchSpanProcessor(otlp[1])
    meters = meter_provider or metrics.get_meter_provider()
    measures = otlp[2] if meter_provider is None and otlp else None
    if _measuring is not None:
        _measuring.current = measures  # this configuration's, or none: OTLP is off now
    elif measures is not None and isinstance(meters, MeterProvider):
        measures = None  # the application's MeterProvider exports as it was set up to
    elif measures is not None:
        _measuring = _MetricExport(measures)
        meters = _metering = MeterProvider(
            resource=resource,
            metric_readers=[PeriodicExportingMetricReader(_measuring)],
            shutdown_on_exit=False,
        )
        metrics.set_meter_provider(meters)
        _name_after_fork(meters)
    return logs, meters, owned, spans, measures


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
    global _pipeline, _final
    settings = Settings.from_env().with_overrides(
        redis_url=redis_url, stream=stream, channel=channel, stream_maxlen=stream_maxlen, backlog=backlog,
        enabled=enabled, console=console,
    )  # fmt: skip
    metrics_address = metrics_endpoint.address()
    with _lock:
        previous, _pipeline, _final = _pipeline, None, None  # shut down once the new one is in place
        sdk_disabled = OTEL_SDK_DISABLED.read()
        if not settings.enabled or sdk_disabled:
            metrics_endpoint.stop()
            _pipeline = _Pipeline(settings, RoutingLogger(None))
            _retire(previous)
            return _pipeline.logger
        logs, meters, owned, spans, measures = _providers(
            _resource(service_name), logger_provider, tracer_provider, meter_provider
        )
        client = client_like(redis_client) if redis_client is not None else None
        writer = RedisWriter(settings, client=client)
        exporters = [RedisBridgeExporter(writer, identity), DecisionMetricsExporter(meter_provider)]
        endpoint = metrics_endpoint.serve(
            metrics_address, lambda own: delivery.observe(own.get_meter(SCOPE), bridge_stats)
        )
        if endpoint is not None:
            exporters.append(DecisionMetricsExporter(instruments=endpoint.instruments))
        processor = RealtimeLogRecordProcessor(exporters)
        logs.add_log_record_processor(processor)
        pipeline = _Pipeline(
            settings,
            RoutingLogger(None),
            logs,
            writer,
            processor,
            owned=owned,
            spans=spans,
            measures=measures,
        )
        pipeline.after = AfterShutdown(settings, lambda: {**logs.resource.attributes, **identity()})
        pipeline.logger = RoutingLogger(
            logs.get_logger(SCOPE),
            console_switch=pipeline.set_console,
            console_output=settings.console,
            max_metadata_keys=max(0, min(MAX_METADATA_KEYS, _attribute_limit() - _OWN_ATTRIBUTES)),
        )
        renew_after_fork(pipeline._after_fork)
        if settings.console:
            pipeline.set_console(True)
        if id(meters) not in _observed_meters:  # instruments live as long as their provider: register once
            _observed_meters.add(id(meters))
            delivery.observe(meters.get_meter(SCOPE), bridge_stats)
        _pipeline = pipeline
        _retire(previous)
        _flush_at_exit()
        return pipeline.logger


def _retire(previous: _Pipeline | None) -> None:
    """Shut the previous pipeline down after the new one is in place: what its held logger records
    from then on goes to the new one."""
    if previous is not None:
        previous.shutdown(timeout=2.0)


def _attribute_limit() -> int:
    """The OTel SDK's attribute limit per log record, as the environment sets it (default 128)."""
    limit = LogRecordLimits().max_attributes
    return limit if limit is not None else MAX_METADATA_KEYS + _OWN_ATTRIBUTES


def _flush_at_exit() -> None:
    """Registered on first configure, after the application's providers: atexit runs it first (LIFO),
    so decisions still queued reach those providers before they shut down."""
    global _exit_registered
    if not _exit_registered:
        _exit_registered = True
        atexit.register(_shutdown_at_exit)


def _shutdown_at_exit() -> None:
    pipeline = _pipeline
    if pipeline is not None:
        shutdown(pipeline.settings.shutdown_timeout)


def get_routing_logger(redis_client: Any = None, console_output: bool | None = None) -> RoutingLogger:
    """The process-wide logger, configured from the environment on first use (SOLLOL's signature)."""
    pipeline = _pipeline
    if pipeline is not None and redis_client is None and console_output is None:
        return pipeline.logger  # the decorators' per-call path: no lock
    with _lock:
        if _pipeline is None and _final is not None and _at_exit():
            return _final.logger  # no thread may start now: it writes at once
        if _pipeline is None:
            try:
                return configure(redis_client=redis_client, console=console_output)
            except RuntimeError:
                if not _at_exit():
                    raise
            _unrecorded.report(
                "exit",
                "routing events recorded at interpreter exit, before any recording was set up, are not "
                "recorded: the OTel SDK cannot start then",
            )
            return RoutingLogger(None)
        if console_output is not None:
            _pipeline.logger.console_output = console_output
        return _pipeline.logger


def enable_console_routing_log() -> None:
    """Also print every routing decision to stderr, in SOLLOL's console layout."""
    get_routing_logger().console_output = True


def bridge_stats() -> BridgeStats:
    """The delivery ledger of the current pipeline; after `shutdown`, its final one (state "stopped").

    All zero, state "off", when none was configured or recording is off. Lock-free: the meter
    provider's reader calls it while `shutdown` holds the lock.
    """
    pipeline = _pipeline or _final
    if pipeline is None:
        return BridgeStats(exported=0, dropped=0, retried=0, backlog=0, connected=False)
    return pipeline.stats()


def force_flush(timeout: float = 5.0) -> bool:
    """Wait until every decision recorded so far is in Redis; False if that took longer than `timeout`."""
    return marked(_flush, timeout)  # it takes the locks a recording takes


def _flush(timeout: float) -> bool:
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
    """Deliver what is pending and stop background work, returning within `timeout` (plus a fraction
    of a second) whatever Redis or an OTLP endpoint does; what was not delivered is logged once."""
    global _pipeline, _final
    with _lock:
        if _pipeline is not None:
            _final = _pipeline.shutdown(timeout)
            _pipeline = None
        metrics_endpoint.stop()
