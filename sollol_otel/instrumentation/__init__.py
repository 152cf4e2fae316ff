"""Instrumentation: decorators for routers' own methods, decision metrics, and the SOLLOL Instrumentor."""

from .decorators import Argument, argument, record_decision, routing_span
from .metrics import DecisionMetrics, DecisionMetricsExporter, decision_metrics_processor

__all__ = [
    "Argument",
    "DecisionMetrics",
    "DecisionMetricsExporter",
    "argument",
    "decision_metrics_processor",
    "record_decision",
    "routing_span",
]
