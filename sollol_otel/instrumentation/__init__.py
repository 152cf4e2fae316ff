"""Instrumentation: decorators for routers' own methods, and the SOLLOL Instrumentor."""

from sollol_otel.instrumentation.decorators import Argument, argument, record_decision, routing_span

__all__ = [
    "Argument",
    "argument",
    "record_decision",
    "routing_span",
]
