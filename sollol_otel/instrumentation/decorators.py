"""Decorators that make a router's own methods report their routing decisions.

    class Router:
        @routing_span(model="model")
        async def route_request(self, model: str, messages: list[dict]) -> dict: ...

        @record_decision(EventType.OLLAMA_NODE_SELECTED, node=lambda n: n.url, reason=lambda n: n.why)
        def select_node(self, model: str) -> Node: ...

`routing_span` opens a span around a request; `record_decision` turns the value a method
returns into one routing event (and times the decision). Values come from extractors (see
`extraction`). Both work on sync and async functions, methods, class- and static methods; with
recording off (SOLLOL_ROUTING_LOG=false) the wrapped function is called directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import wrapt
from opentelemetry.trace import SpanKind

from sollol_otel.events import EventType
from sollol_otel.instrumentation.engine import Instrumentation, default_model, event_type_named, qualname
from sollol_otel.instrumentation.extraction import Extractor

F = TypeVar("F", bound=Callable[..., Any])

_UNSET: Any = object()


def routing_span(
    name: str | None = None,
    *,
    model: Extractor | None = _UNSET,
    kind: SpanKind = SpanKind.INTERNAL,
    fallback_to: str | None = None,
) -> Callable[[F], F]:
    """Open a span around a routing request; decisions made inside it land in its trace.

    `name` defaults to the function's qualified name; `model` to its argument named `model`.
    `fallback_to` names the backend the caller falls back to when this request raises.
    """

    def decorate(function: F) -> F:
        instrumentation = Instrumentation(
            function,
            span_name=name or qualname(function),
            span_kind=kind,
            fallback_to=fallback_to,
            extractors={"model": default_model(function) if model is _UNSET else model},
        )
        return cast(F, wrapt.FunctionWrapper(function, instrumentation))

    return decorate


def record_decision(
    event_type: EventType | str = EventType.ROUTE_DECISION,
    *,
    model: Extractor | None = _UNSET,
    backend: Extractor | None = None,
    reason: Extractor | None = None,
    node: Extractor | None = None,
    confidence: Extractor | None = None,
    cached: Extractor | None = None,
    fallback_to: str | None = None,
    span: bool | str = False,
    emit: bool = True,
    **metadata: Extractor,
) -> Callable[[F], F]:
    """Record the decision a method returns as one routing event of `event_type`, timed.

    `node` becomes the event's `node_url`; `cached` truthy turns a ROUTE_DECISION into a
    CACHE_HIT (as SOLLOL does); other keyword extractors become extra event keys. `span=True`
    (or a name) also opens a span of its own; `emit=False` only times the decision and
    annotates the span, for methods that log the event themselves.
    """
    kind = event_type_named(event_type)

    def decorate(function: F) -> F:
        instrumentation = Instrumentation(
            function,
            span_name=(span if isinstance(span, str) else qualname(function)) if span else None,
            event_type=kind,
            emit=emit,
            fallback_to=fallback_to,
            extractors={
                "model": default_model(function) if model is _UNSET else model,
                "backend": backend,
                "reason": reason,
                "node_url": node,
                "confidence": confidence,
                "cached": cached,
                **metadata,
            },
        )
        return cast(F, wrapt.FunctionWrapper(function, instrumentation))

    return decorate
