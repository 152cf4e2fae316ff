"""The call engine behind the decorators and the Instrumentor's patches.

Around each wrapped call: open the span (when asked), time the decision, turn the return value
into one routing event, or the exception into one FALLBACK_TRIGGERED event (once per exception
however many instrumented calls it passes through), then re-raise it unchanged. A decision
without its own model takes the model of the request span it runs in. Whatever goes wrong
inside the instrumentation itself is logged once and swallowed: the router never sees it.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from opentelemetry import context, metrics, trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
)

from sollol_otel.attributes import ERROR_TYPE, MODEL, NAMESPACE
from sollol_otel.diagnostics import Trouble
from sollol_otel.events import EventType
from sollol_otel.identity import package_version
from sollol_otel.instrumentation.extraction import Arguments, Extractor, Field
from sollol_otel.recording.exporters.decision_metrics import SCOPE, DecisionMetrics, decision_metrics
from sollol_otel.recording.logger import RoutingLogger, exclusively
from sollol_otel.recording.pipeline import get_routing_logger
from sollol_otel.wire import truncate

_log = logging.getLogger(__name__)

#: How much of an exception's message goes into a failure event's reason.
REASON_MESSAGE_CHARS = 200
#: The backend an event type implies when no extractor names one (SOLLOL's values).
IMPLIED_BACKEND: Mapping[EventType, str] = {
    EventType.OLLAMA_NODE_SELECTED: "ollama",
    EventType.RPC_BACKEND_SELECTED: "rpc",
    EventType.COORDINATOR_START: "llamacpp",
    EventType.COORDINATOR_STOP: "llamacpp",
}
CODE_FUNCTION = "code.function.name"


_trouble = Trouble(_log, unit="failures")


def _swallow(what: str) -> None:
    """Log each kind of failure inside instrumentation once, with its traceback; later ones at debug."""
    _trouble.count()
    _trouble.report(
        what,
        "sollol-otel instrumentation failed to %s; later failures of this kind are logged at debug level",
        what, level=logging.ERROR, repeat_level=logging.DEBUG, exc_info=True,
    )  # fmt: skip


_ids = RandomIdGenerator()


def _ids_only(span: Span) -> Span:
    """`span` when a tracer made it a span of its own; else one carrying fresh ids, a child of the
    current span.

    Without an SDK TracerProvider the API's tracer hands back the parent (or an invalid span),
    so decisions would carry no trace id and no request chain could be read. A non-recording
    span with its own ids costs next to nothing and takes over no provider.
    """
    own = span.get_span_context()
    parent = trace.get_current_span().get_span_context()
    if own.is_valid and own.span_id != parent.span_id:  # e.g. an SDK span its sampler dropped
        return span
    trace_id = parent.trace_id if parent.is_valid else _ids.generate_trace_id()
    return NonRecordingSpan(SpanContext(trace_id, _ids.generate_span_id(), False, parent.trace_flags))


_provider_set = False


def _untraced() -> bool:
    """Nobody traces: the global provider is still the API's proxy (or its no-op). The API keeps
    the first provider an application sets for good, so once one is seen the answer is kept."""
    global _provider_set
    if not _provider_set:
        _provider_set = not isinstance(trace.get_tracer_provider(), (ProxyTracerProvider, NoOpTracerProvider))
    return not _provider_set


class _Frame:
    """One decorated call in progress; its parent is the decorated call it runs inside."""

    __slots__ = ("backend", "model", "node", "parent", "reported")

    def __init__(self, parent: _Frame | None, model: object) -> None:
        self.parent = parent
        self.model: object = model if model is not None or parent is None else parent.model
        self.backend: object = None
        self.node: object = None
        self.reported: BaseException | None = None

    def hand_up(self, error: BaseException | None, backend: object, node: object = None) -> None:
        """Tell the enclosing call what this one decided, and that its exception is reported."""
        parent = self.parent
        if parent is None:
            return
        if backend is not None:
            parent.backend = backend
        if node is not None:
            parent.node = node
        if error is not None:
            parent.reported = error


_frames: contextvars.ContextVar[_Frame | None] = contextvars.ContextVar(
    "sollol_otel_routing_frame", default=None
)


class _Call:
    """One instrumented call, as a context manager around the wrapped one (sync or awaited).

    Leaving it records the outcome (the value handed to `returned`, or the exception, which
    propagates untouched), then leaves the call's context and ends its span.
    """

    __slots__ = (
        "args",
        "context_token",
        "frame",
        "frame_token",
        "instance",
        "instrumentation",
        "kwargs",
        "logger",
        "result",
        "seconds",
        "span",
        "started",
    )

    def __init__(
        self,
        instrumentation: Instrumentation,
        logger: RoutingLogger,
        instance: object,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> None:
        self.instrumentation = instrumentation
        self.logger = logger
        self.instance = instance
        self.args = args
        self.kwargs = kwargs
        self.result: Any = None
        self.span: Span | None = None
        self.context_token: object = None
        self.frame: _Frame | None = None
        self.frame_token: contextvars.Token[_Frame | None] | None = None
        self.started = 0
        self.seconds = 0.0

    def __enter__(self) -> _Call:
        self.instrumentation._start(self)
        return self

    def returned(self, result: Any) -> Any:
        self.result = result
        return result

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        try:
            if error is None:
                self.instrumentation._succeed(self)
            elif isinstance(error, Exception):
                self.instrumentation._fail(self, error)
        finally:
            self.instrumentation._end(self)


class Instrumentation:
    """What a decorated call does around the wrapped one: start, succeed, fail, end.

    The same object serves as a wrapt wrapper for decorators and for the Instrumentor's patches.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        span_name: str | None,
        span_kind: SpanKind = SpanKind.INTERNAL,
        event_type: EventType | None = None,
        emit: bool = True,
        fallback_to: str | None = None,
        extractors: Mapping[str, Extractor | None],
        failure_events: bool = True,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        fields = [Field.compile(key, ex) for key, ex in extractors.items() if ex is not None]
        self._arguments = Arguments(function, {f.argument for f in fields if f.argument is not None})
        self._model = next((f for f in fields if f.key == "model"), None)
        self._fields = [f for f in fields if f.key != "model"]
        plain = function.__func__ if isinstance(function, (staticmethod, classmethod)) else function
        self._is_async = inspect.iscoroutinefunction(plain)
        self._qualname: str = getattr(plain, "__qualname__", repr(plain))
        self._span_name = span_name
        self._span_kind = span_kind
        self._event_type = event_type
        self._emit = emit
        self._fallback_to = fallback_to
        self._failure_events = failure_events
        self._tracer = trace.get_tracer(SCOPE, package_version(), tracer_provider) if span_name else None
        self._metrics = None if meter_provider is None else DecisionMetrics(meter_provider)

    def __call__(
        self, wrapped: Callable[..., Any], instance: object, args: tuple[Any, ...], kwargs: Any
    ) -> Any:
        try:
            logger = get_routing_logger()
            recording = logger.enabled
        except Exception:
            _swallow("get the routing logger")
            recording = False
        if not recording:
            return wrapped(*args, **kwargs)
        call = _Call(self, logger, instance, args, kwargs)
        if self._is_async:
            return self._call_async(call, wrapped)
        with call:
            return call.returned(wrapped(*args, **kwargs))

    @staticmethod
    async def _call_async(call: _Call, wrapped: Callable[..., Any]) -> Any:
        with call:  # entered when awaited: the span covers the awaited work, in the awaiting task's context
            return call.returned(await wrapped(*call.args, **call.kwargs))

    def _extract(self, field: Field, call: _Call, result: Any) -> object:
        """The extracted value, or None (logged once) when the extractor itself fails."""
        try:
            return field.value(self._arguments, call.instance, call.args, call.kwargs, result)
        except Exception:
            _swallow(f"extract {field.key!r}")
            return None

    def _start(self, call: _Call) -> None:
        try:
            model = None
            if self._model is not None and not self._model.from_result:
                model = self._extract(self._model, call, None)
            call.frame = _Frame(_frames.get(), model)
            call.frame_token = _frames.set(call.frame)
            if self._tracer is not None:
                attributes = {CODE_FUNCTION: self._qualname}
                if call.frame.model is not None:
                    attributes[MODEL] = str(call.frame.model)
                span = self._tracer.start_span(
                    cast(str, self._span_name), kind=self._span_kind, attributes=attributes
                )
                call.span = span if span.is_recording() else _ids_only(span)
            elif _untraced() and not trace.get_current_span().get_span_context().is_valid:
                call.span = _ids_only(trace.INVALID_SPAN)  # a decision on its own still starts a chain
            if call.span is not None:
                call.context_token = context.attach(trace.set_span_in_context(call.span))
        except Exception:
            _swallow("start a routing span")
        call.started = time.perf_counter_ns()

    def _end(self, call: _Call) -> None:
        """Leave the call's context and end its span, after its outcome was recorded inside both."""
        try:
            if call.context_token is not None:
                context.detach(call.context_token)  # type: ignore[arg-type]
            if call.frame_token is not None:
                _frames.reset(call.frame_token)
            if call.span is not None:
                exclusively(call.span.end)  # as recording does: never waits on a lock this thread holds
        except Exception:
            _swallow("end a routing span")

    def _succeed(self, call: _Call) -> None:
        call.seconds = (time.perf_counter_ns() - call.started) / 1e9
        try:
            frame = cast(_Frame, call.frame)
            model = frame.model
            if self._model is not None and self._model.from_result:
                model = self._extract(self._model, call, call.result)
            backend: object = None
            node: object = None
            if self._event_type is not None:
                fields = {f.key: self._extract(f, call, call.result) for f in self._fields}
                backend = fields.pop("backend", None) or IMPLIED_BACKEND.get(self._event_type)
                node = fields.get("node_url")
                self._decided(call, model, backend, fields)
            frame.hand_up(None, backend, node)
        except Exception:
            _swallow("record a routing decision")

    def _decided(self, call: _Call, model: object, backend: object, fields: dict[str, object]) -> None:
        event_type = cast(EventType, self._event_type)
        seconds = call.seconds
        if event_type is EventType.ROUTE_DECISION:
            fields["cached"] = bool(fields.get("cached"))
            if fields["cached"]:
                event_type = EventType.CACHE_HIT
        else:
            fields.pop("cached", None)
        if self._emit:  # the event carries the timing; metrics take it from there, off this thread
            call.logger.record(event_type, model, backend, decision_ms=round(seconds * 1000, 3), **fields)
        else:
            exclusively(self._observe, seconds, event_type.value, backend)
        span = call.span or trace.get_current_span()
        if span.is_recording() and backend is not None:
            exclusively(_name_backend, span, backend, fields.get("node_url"))

    def _fail(self, call: _Call, error: Exception) -> None:
        call.seconds = (time.perf_counter_ns() - call.started) / 1e9
        try:
            frame = cast(_Frame, call.frame)
            error_type = type(error).__name__
            if call.span is not None:
                exclusively(_mark_failed, call.span, error)
            backend = self._failed_backend(call, frame)
            timing = {} if self._event_type is None else {"decision_ms": round(call.seconds * 1000, 3)}
            if self._failure_events and frame.reported is not error:
                reason = f"{error_type}: {truncate(str(error), REASON_MESSAGE_CHARS)}"
                failure = {"from_backend": backend, "reason": reason, **timing}
                if frame.node is not None:  # the node chosen inside this call is the one that failed
                    failure["node_url"] = frame.node
                call.logger.record(EventType.FALLBACK_TRIGGERED, frame.model, self._fallback_to, **failure)
            elif timing:
                exclusively(
                    self._observe, call.seconds, EventType.FALLBACK_TRIGGERED.value, backend, error_type
                )
            frame.hand_up(error if self._failure_events or frame.reported is error else None, None)
        except Exception:
            _swallow("record a failed routing call")

    def _observe(
        self, seconds: float, event_type: str, backend: object, error_type: str | None = None
    ) -> None:
        """Time a decision that no event of ours carries (SOLLOL logs it, or a child reported the failure)."""
        (self._metrics or decision_metrics()).observe_duration(seconds, event_type, backend, error_type)

    def _failed_backend(self, call: _Call, frame: _Frame) -> object:
        """What was being tried when the call failed: a backend decided inside it, or one in its arguments."""
        if frame.backend is not None:
            return frame.backend
        backend_field = next((f for f in self._fields if f.key == "backend" and not f.from_result), None)
        if backend_field is not None:
            return self._extract(backend_field, call, None)
        return IMPLIED_BACKEND.get(self._event_type) if self._event_type is not None else None


def _name_backend(span: Span, backend: object, node_url: object) -> None:
    span.set_attribute(NAMESPACE + "backend", str(backend))
    if node_url is not None:
        span.set_attribute(NAMESPACE + "node_url", str(node_url))


def _mark_failed(span: Span, error: Exception) -> None:
    error_type = type(error).__name__
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, truncate(f"{error_type}: {error}", 1024)))
    span.set_attribute(ERROR_TYPE, f"{type(error).__module__}.{type(error).__qualname__}")


def event_type_named(value: EventType | str) -> EventType:
    if isinstance(value, EventType):
        return value
    return EventType(value.upper().removeprefix("SOLLOL.ROUTING."))


def default_model(function: Callable[..., Any]) -> str | None:
    """A parameter literally named `model` is the model unless the caller says otherwise."""
    try:
        return "model" if "model" in inspect.signature(function).parameters else None
    except (TypeError, ValueError):
        return None


def qualname(function: Callable[..., Any]) -> str:
    plain = function.__func__ if isinstance(function, (staticmethod, classmethod)) else function
    return str(getattr(plain, "__qualname__", repr(plain)))
