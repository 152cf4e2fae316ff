"""The SOLLOL-compatible routing logger: SOLLOL 0.9.66's method names, OpenTelemetry underneath.

Each call becomes one log-based event (correlated with the active span) and, inside a recording
span, a span event, so Jaeger shows the decision within the request's trace.

The caller's thread does only what must happen there: bounding the metadata (before any
per-item work: a caller may pass 10,000 keys or a million-key dict), the span event (the span may
end right after) and capturing the timestamp and context. The log event is emitted from a
background thread with that timestamp and context, so it is correlated exactly as if emitted
inline; building and validating its record (most of an emit's cost) stays off the router's path.
Nothing here raises into the router: every failure and every bounded value is counted.

Recording never waits for a lock its own thread may hold. A signal handler runs on the thread
it interrupts, maybe in the middle of a recording (holding a span's lock, a queue's): a
recording started there is kept on the thread and done the moment the interrupted one ends.
One thread-local flag tells the two apart.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from opentelemetry import context, trace
from opentelemetry._logs import Logger, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from sollol_otel.attributes import (
    EVENT_ID,
    MAX_METADATA_KEYS,
    event_attributes,
    message_of,
    span_event_attributes,
    to_wire_fields,
)
from sollol_otel.diagnostics import Trouble
from sollol_otel.events import EventType
from sollol_otel.identity import instance_id, new_event_id, renew_after_fork
from sollol_otel.recording.handoff import Handoff
from sollol_otel.wire import truncate

_log = logging.getLogger(__name__)
_R = TypeVar("_R")

_WARNINGS = frozenset({EventType.FALLBACK_TRIGGERED, EventType.COORDINATOR_STOP})
_SEVERITY = {t: SeverityNumber.WARN if t in _WARNINGS else SeverityNumber.INFO for t in EventType}
_EVENT_NAMES = {event_type: event_type.event_name for event_type in EventType}  # not computed per call
_Fields = Mapping[str, Any]
_NO_FIELDS: _Fields = MappingProxyType({})
#: One logging call: event type, model, backend, the method's own fields, the caller's metadata.
_Arguments = tuple[EventType, Any, Any, _Fields, _Fields]


class Decision(NamedTuple):
    """What the emitter thread needs: bounded attributes only, never the caller's own objects."""

    event_type: EventType
    attributes: dict[str, AttributeValue]
    timestamp: int
    context: Context


def _finish(decision: Decision) -> str:
    """Give the decision its event id (off the caller's thread) and return its message."""
    decision.attributes[EVENT_ID] = new_event_id()
    return truncate(message_of(decision.event_type, decision.attributes))


def wire_fields(decision: Decision, resource: Mapping[str, Any]) -> dict[str, Any]:
    """The decision as the wire event the bridge would write, without the OTel SDK (it may be shut down)."""
    body = _finish(decision)
    span = trace.get_current_span(decision.context).get_span_context()
    return to_wire_fields(
        decision.event_type,
        timestamp_ns=decision.timestamp,
        attributes=decision.attributes,
        resource=resource,
        body=body,
        trace_id=span.trace_id,
        span_id=span.span_id,
    )


class _ThisThread(threading.local):
    """Whether this thread is inside a recording, and what was recorded while it was (re-entrant calls)."""

    busy = False

    def __init__(self) -> None:
        self.deferred: collections.deque[Callable[[], None]] = collections.deque()


_this_thread = _ThisThread()


def exclusively(work: Callable[..., None], *args: Any) -> None:
    """`work(*args)` (calls that take OTel's locks: a span's, a queue's) now, or, when this thread is in
    the middle of a recording (a signal handler interrupted it), as soon as that recording ends."""
    state = _this_thread
    if state.busy:
        state.deferred.append(functools.partial(work, *args))  # never waits on the interrupted frame
        return
    marked(work, *args)


def marked(work: Callable[..., _R], *args: Any) -> _R:
    """`work(*args)` now, as recording: what a signal handler records meanwhile is done once it ends.

    For calls that take the locks a recording takes (flush, shutdown) and must answer now."""
    state = _this_thread
    if state.busy:  # called by a signal handler inside a recording: it answers now, it cannot wait
        return work(*args)
    state.busy = True
    try:
        return work(*args)
    finally:
        state.busy = False
        if state.deferred:  # also when `work` was interrupted by an exception (KeyboardInterrupt)
            _run_deferred(state)


def _run_deferred(state: _ThisThread) -> None:
    """What signal handlers recorded while this thread was recording, in order. The thread stays marked
    meanwhile: a signal landing now queues behind them, never runs between an item and its span's end."""
    deferred = state.deferred
    while deferred:
        state.busy = True
        try:
            while deferred:
                work = deferred.popleft()
                try:
                    work()
                except Exception:  # work queued here never raises into the router
                    _log.exception("sollol-otel: recording deferred from a signal handler failed")
        finally:
            state.busy = False


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
        max_metadata_keys: int = MAX_METADATA_KEYS,
    ) -> None:
        self._logger = otel_logger
        self._console_switch = console_switch
        self._console = console_output
        self._max_keys = max_metadata_keys
        self._emitter: Handoff[Decision] | None = (
            None if otel_logger is None else Handoff(self._emit, name="sollol-otel-emitter")
        )
        self._submit: Callable[[Decision], None] | None = None
        if self._emitter is not None:
            self._submit = self._emitter.submit
        self._start_counting()
        renew_after_fork(self._start_counting)

    def _start_counting(self) -> None:
        """Zero counters: a new logger, or a forked child's copy (its ledger starts clean)."""
        self._trouble = Trouble(_log, unit="routing events lost")
        self._input = Trouble(_log, unit="values")
        self._counts_lock = threading.Lock()
        self._record_failed = 0  # on callers' threads, under the lock (rare)
        self._rejected: collections.Counter[str] = collections.Counter()
        self.emitted = 0  # on the emitter thread only
        self.emit_failed = 0

    @property
    def instance_id(self) -> str:
        """SOLLOL's `hostname_pid_8hex`; a forked child has its own."""
        return instance_id()

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
            marked(self._console_switch, self._console)  # it flushes: the locks a recording takes

    def record(self, event_type: EventType, model: Any = None, backend: Any = None, /, **fields: Any) -> None:
        """Record one decision of any type; never raises into the router.

        Positional-only parameters leave every keyword free for metadata, as in SOLLOL.
        """
        self._record(event_type, model, backend, _NO_FIELDS, fields)

    def _record(
        self, event_type: EventType, model: Any, backend: Any, fields: _Fields, metadata: _Fields
    ) -> None:
        """`fields` are the method's own (always kept), `metadata` the caller's (bounded).

        Apart, so a caller's 10,000 keywords are not copied into a second dict on the way here.
        """
        if self._submit is None:
            return
        now = context.get_current()  # a signal handler's recording, deferred, keeps its own time and context
        arguments = (event_type, model, backend, fields, metadata)
        state = _this_thread  # `exclusively`, inlined: this is the router's path
        if state.busy:
            state.deferred.append(functools.partial(self._record_at, arguments, time.time_ns(), now))
            return
        state.busy = True
        try:
            self._record_at(arguments, time.time_ns(), now)
        finally:
            state.busy = False
            if state.deferred:
                _run_deferred(state)

    def _record_at(self, arguments: _Arguments, timestamp: int, at: Context) -> None:
        """The recording itself, at `timestamp`, in the context the call was made in."""
        event_type, model, backend, fields, metadata = arguments
        try:
            attributes = event_attributes(
                event_type,
                model,
                backend,
                fields,
                metadata,
                max_keys=self._max_keys,
                reject=self._reject,
            )
            span = trace.get_current_span(at)
            if span.is_recording():  # same timestamp as the log event: receivers merge the twins on it
                span.add_event(_EVENT_NAMES[event_type], span_event_attributes(attributes), timestamp)
            submit = self._submit
            if submit is not None:
                submit(Decision(event_type, attributes, timestamp, at))
        except Exception:
            with self._counts_lock:
                self._record_failed += 1
            self._trouble.count()
            self._trouble.report(
                "record",
                "sollol-otel could not record a routing event; later failures are counted in bridge_stats()",
                level=logging.ERROR, repeat_level=logging.DEBUG, exc_info=True,
            )  # fmt: skip

    def _reject(self, reason: str) -> None:
        """A metadata value was cut, replaced or renamed (the event is still recorded): counted, said once."""
        with self._counts_lock:
            self._rejected[reason] += 1
        self._input.report(
            reason,
            "routing event metadata bounded (%s); the event is recorded, this kind is said once and counted "
            "in bridge_stats().rejected",
            reason,
        )

    def _emit(self, decisions: Sequence[Decision]) -> None:
        """On the emitter thread: one log event per decision, as if emitted by the caller."""
        assert self._logger is not None
        for decision in decisions:
            try:
                self._logger.emit(
                    timestamp=decision.timestamp,
                    context=decision.context,
                    event_name=_EVENT_NAMES[decision.event_type],
                    severity_number=_SEVERITY[decision.event_type],
                    body=_finish(decision),
                    attributes=decision.attributes,
                )
            except Exception:
                self.emit_failed += 1
                self._trouble.count()
                self._trouble.report(
                    "emit",
                    "sollol-otel could not emit a routing event; later ones are counted in bridge_stats()",
                    level=logging.ERROR, repeat_level=logging.DEBUG, exc_info=True,
                )  # fmt: skip
            else:
                self.emitted += 1

    @property
    def dropped(self) -> int:
        """Decisions lost because the emitter fell 10,000 behind."""
        return 0 if self._emitter is None else self._emitter.dropped

    @property
    def record_failed(self) -> int:
        return self._record_failed

    @property
    def rejected(self) -> dict[str, int]:
        """Metadata values cut, replaced or renamed on the way in, by reason (the events were recorded)."""
        with self._counts_lock:
            return dict(self._rejected)

    @property
    def emitter(self) -> Handoff[Decision] | None:
        """The hand-off to the emitter thread, for the pipeline's ledger."""
        return self._emitter

    def flush(self, timeout: float) -> bool:
        """Wait until every decision recorded so far has been emitted."""
        return True if self._emitter is None else self._emitter.flush(timeout)

    def close(self, timeout: float, then: Callable[[Decision], None]) -> None:
        """Emit what is queued (within `timeout`) and stop; decisions recorded from now on go to `then`."""
        if self._emitter is not None:
            self._submit = then
            self._emitter.close(timeout)

    def forward(self, decision: Decision) -> None:
        """A decision another (shut down) logger recorded: this one emits it (dropped if recording is off)."""
        if self._submit is not None:
            self._submit(decision)

    # SOLLOL 0.9.66's API, same names and keyword arguments.

    def log_route_decision(
        self, model: str, backend: str, reason: str, cached: bool = False, **metadata: Any
    ) -> None:
        event_type = EventType.CACHE_HIT if cached else EventType.ROUTE_DECISION
        self._record(event_type, model, backend, {"reason": reason, "cached": cached}, metadata)

    def log_task_queued(self, task_id: str, model: str, worker: str | None = None, **metadata: Any) -> None:
        self._record(EventType.TASK_QUEUED, model, None, {"task_id": task_id, "worker": worker}, metadata)

    def log_task_start(self, task_id: str, model: str, worker: str, **metadata: Any) -> None:
        fields = {"task_id": task_id, "worker": worker, "start_time": time.perf_counter()}
        self._record(EventType.TASK_START, model, None, fields, metadata)

    def log_task_complete(
        self, task_id: str, model: str, worker: str, duration: float, success: bool = True, **metadata: Any
    ) -> None:
        fields = {"task_id": task_id, "worker": worker, "duration": duration, "success": success}
        self._record(EventType.TASK_COMPLETE, model, None, fields, metadata)

    def log_worker_load(
        self,
        worker: str,
        active_tasks: int,
        cpu_percent: float | None = None,
        memory_mb: float | None = None,
        **metadata: Any,
    ) -> None:
        fields = {
            "worker": worker,
            "active_tasks": active_tasks,
            "cpu_percent": cpu_percent,
            "memory_mb": memory_mb,
        }
        self._record(EventType.WORKER_LOAD, None, None, fields, metadata)

    def log_fallback(
        self, model: str, from_backend: str, to_backend: str, reason: str, **metadata: Any
    ) -> None:
        fields = {"from_backend": from_backend, "reason": reason}
        self._record(EventType.FALLBACK_TRIGGERED, model, to_backend, fields, metadata)

    def log_model_switch(self, from_model: str, to_model: str, backend: str, **metadata: Any) -> None:
        self._record(EventType.MODEL_SWITCH, to_model, backend, {"from_model": from_model}, metadata)

    def log_coordinator_start(self, model: str, rpc_backends: int, **metadata: Any) -> None:
        self._record(EventType.COORDINATOR_START, model, "llamacpp", {"rpc_backends": rpc_backends}, metadata)

    def log_coordinator_stop(self, model: str, **metadata: Any) -> None:
        self._record(EventType.COORDINATOR_STOP, model, "llamacpp", _NO_FIELDS, metadata)

    def log_rpc_backend_selected(
        self, backend_host: str, backend_port: int, reason: str, **metadata: Any
    ) -> None:
        fields = {"backend_host": backend_host, "backend_port": backend_port, "reason": reason}
        self._record(EventType.RPC_BACKEND_SELECTED, None, "rpc", fields, metadata)

    def log_ollama_node_selected(self, node_url: str, reason: str, model: str, **metadata: Any) -> None:
        fields = {"node_url": node_url, "reason": reason}
        self._record(EventType.OLLAMA_NODE_SELECTED, model, "ollama", fields, metadata)
