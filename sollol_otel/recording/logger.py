"""The SOLLOL-compatible routing logger: SOLLOL 0.9.66's method names, OpenTelemetry underneath.

Each call becomes one log-based event (correlated with the active span) and, inside a recording
span, a span event, so Jaeger shows the decision within the request's trace.

The caller's thread does only what must happen there: the span event (the span may end right
after) and capturing the timestamp and context. The log event is emitted from a background
thread with that timestamp and context, so it is correlated exactly as if emitted inline;
building and validating its record (most of an emit's cost) stays off the router's path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from opentelemetry import context, trace
from opentelemetry._logs import Logger, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from sollol_otel.attributes import event_attributes, span_event_attributes
from sollol_otel.events import EventType, one_line_message
from sollol_otel.identity import instance_id
from sollol_otel.recording.handoff import Handoff
from sollol_otel.wire import truncate

_log = logging.getLogger(__name__)

_WARNINGS = frozenset({EventType.FALLBACK_TRIGGERED, EventType.COORDINATOR_STOP})
_SEVERITY = {t: SeverityNumber.WARN if t in _WARNINGS else SeverityNumber.INFO for t in EventType}
_EVENT_NAMES = {event_type: event_type.event_name for event_type in EventType}  # not computed per call


class _Decision(NamedTuple):
    event_type: EventType
    model: Any
    backend: Any
    fields: dict[str, Any]
    attributes: dict[str, AttributeValue]
    timestamp: int
    context: Context


class RoutingLogger:
    """Records routing decisions; a SOLLOL call site works by changing only its import."""

    ROUTE_DECISION = EventType.ROUTE_DECISION.value
    TASK_QUEUED = EventType.TASK_QUEUED.value
    TASK_START = EventType.TASK_START.value
    TASK_COMPLETE = EventType.TASK_COMPLETE.value
    WORKER_LOAD = EventType.WORKER_LOAD.value
    FALLBACK_TRIGGERED = EventType.FALLBACK_TRIGGERED.value
    MODEL_SWITCH = EventType.MODEL_SWITCH.value
    CACHE_HIT = EventType.CACHE_HIT.value
    COORDINATOR_START = EventType.COORDINATOR_START.value
    COORDINATOR_STOP = EventType.COORDINATOR_STOP.value
    RPC_BACKEND_SELECTED = EventType.RPC_BACKEND_SELECTED.value
    OLLAMA_NODE_SELECTED = EventType.OLLAMA_NODE_SELECTED.value

    def __init__(
        self,
        otel_logger: Logger | None,
        *,
        console_switch: Callable[[bool], None] | None = None,
        console_output: bool = False,
    ) -> None:
        self._logger = otel_logger
        self._console_switch = console_switch
        self._console = console_output
        self._failed_once = False
        self.instance_id = instance_id()
        self._emitter: Handoff[_Decision] | None = (
            None if otel_logger is None else Handoff(self._emit, name="sollol-otel-emitter")
        )

    @property
    def enabled(self) -> bool:
        """False when recording is off (SOLLOL_ROUTING_LOG=false or OTEL_SDK_DISABLED)."""
        return self._logger is not None

    @property
    def console_output(self) -> bool:
        return self._console

    @console_output.setter
    def console_output(self, value: bool) -> None:
        self._console = bool(value)
        if self._console_switch is not None:
            self._console_switch(self._console)

    def record(self, event_type: EventType, model: Any = None, backend: Any = None, /, **fields: Any) -> None:
        """Record one decision of any type; never raises into the router.

        Positional-only parameters leave every keyword free for metadata, as in SOLLOL.
        """
        if self._emitter is None:
            return
        try:
            attributes = event_attributes(event_type, model, backend, fields)
            timestamp = time.time_ns()
            span = trace.get_current_span()
            if span.is_recording():  # same timestamp as the log event: receivers dedupe on it
                span.add_event(_EVENT_NAMES[event_type], span_event_attributes(attributes), timestamp)
            self._emitter.submit(
                _Decision(event_type, model, backend, fields, attributes, timestamp, context.get_current())
            )
        except Exception:
            self._failed("record")

    def _emit(self, decisions: Sequence[_Decision]) -> None:
        """On the emitter thread: one log event per decision, as if emitted by the caller."""
        assert self._logger is not None
        for decision in decisions:
            try:
                self._logger.emit(
                    timestamp=decision.timestamp,
                    context=decision.context,
                    event_name=_EVENT_NAMES[decision.event_type],
                    severity_number=_SEVERITY[decision.event_type],
                    body=truncate(
                        one_line_message(
                            decision.event_type,
                            {"model": decision.model, "backend": decision.backend, **decision.fields},
                        )
                    ),
                    attributes=decision.attributes,
                )
            except Exception:
                self._failed("emit")

    def _failed(self, what: str) -> None:
        if not self._failed_once:
            self._failed_once = True
            _log.exception("sollol-otel could not %s a routing event; further failures are silent", what)

    @property
    def dropped(self) -> int:
        """Decisions lost because the emitter fell 10,000 behind."""
        return 0 if self._emitter is None else self._emitter.dropped

    def flush(self, timeout: float) -> bool:
        """Wait until every decision recorded so far has been emitted."""
        return True if self._emitter is None else self._emitter.flush(timeout)

    def close(self, timeout: float) -> None:
        if self._emitter is not None:
            self._emitter.close(timeout)

    # SOLLOL 0.9.66's API, same names and keyword arguments.

    def log_route_decision(
        self, model: str, backend: str, reason: str, cached: bool = False, **metadata: Any
    ) -> None:
        event_type = EventType.CACHE_HIT if cached else EventType.ROUTE_DECISION
        self.record(event_type, model, backend, reason=reason, cached=cached, **metadata)

    def log_task_queued(self, task_id: str, model: str, worker: str | None = None, **metadata: Any) -> None:
        self.record(EventType.TASK_QUEUED, model, None, task_id=task_id, worker=worker, **metadata)

    def log_task_start(self, task_id: str, model: str, worker: str, **metadata: Any) -> None:
        self.record(
            EventType.TASK_START,
            model,
            None,
            task_id=task_id,
            worker=worker,
            start_time=time.perf_counter(),
            **metadata,
        )

    def log_task_complete(
        self, task_id: str, model: str, worker: str, duration: float, success: bool = True, **metadata: Any
    ) -> None:
        self.record(
            EventType.TASK_COMPLETE,
            model,
            None,
            task_id=task_id,
            worker=worker,
            duration=duration,
            success=success,
            **metadata,
        )

    def log_worker_load(
        self,
        worker: str,
        active_tasks: int,
        cpu_percent: float | None = None,
        memory_mb: float | None = None,
        **metadata: Any,
    ) -> None:
        self.record(
            EventType.WORKER_LOAD,
            worker=worker,
            active_tasks=active_tasks,
            cpu_percent=cpu_percent,
            memory_mb=memory_mb,
            **metadata,
        )

    def log_fallback(
        self, model: str, from_backend: str, to_backend: str, reason: str, **metadata: Any
    ) -> None:
        self.record(
            EventType.FALLBACK_TRIGGERED,
            model,
            to_backend,
            from_backend=from_backend,
            reason=reason,
            **metadata,
        )

    def log_model_switch(self, from_model: str, to_model: str, backend: str, **metadata: Any) -> None:
        self.record(EventType.MODEL_SWITCH, to_model, backend, from_model=from_model, **metadata)

    def log_coordinator_start(self, model: str, rpc_backends: int, **metadata: Any) -> None:
        self.record(EventType.COORDINATOR_START, model, "llamacpp", rpc_backends=rpc_backends, **metadata)

    def log_coordinator_stop(self, model: str, **metadata: Any) -> None:
        self.record(EventType.COORDINATOR_STOP, model, "llamacpp", **metadata)

    def log_rpc_backend_selected(
        self, backend_host: str, backend_port: int, reason: str, **metadata: Any
    ) -> None:
        self.record(
            EventType.RPC_BACKEND_SELECTED,
            None,
            "rpc",
            backend_host=backend_host,
            backend_port=backend_port,
            reason=reason,
            **metadata,
        )

    def log_ollama_node_selected(self, node_url: str, reason: str, model: str, **metadata: Any) -> None:
        self.record(
            EventType.OLLAMA_NODE_SELECTED, model, "ollama", node_url=node_url, reason=reason, **metadata
        )
