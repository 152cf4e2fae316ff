"""Instrumentation: decorators for routers' own methods, decision metrics, and the SOLLOL Instrumentor."""

from .decorators import Argument, argument, record_decision, routing_span
from .metrics import DecisionMetrics, DecisionMetricsProcessor

__all__ = [
    "Argument",
    "DecisionMetrics",
    "DecisionMetricsProcessor",
    "argument",
    "record_decision",
    "routing_span",
]
