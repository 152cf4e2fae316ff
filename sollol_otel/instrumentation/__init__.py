"""Instrumentation: decorators for a router's own methods, and the Instrumentor for SOLLOL's.

from sollol_otel.instrumentation import SollolInstrumentor, record_decision, routing_span
"""

from sollol_otel.instrumentation.decorators import record_decision, routing_span
from sollol_otel.instrumentation.extraction import Argument, Extractor, argument
from sollol_otel.instrumentation.instrumentor import SollolInstrumentor

__all__ = ["Argument", "Extractor", "SollolInstrumentor", "argument", "record_decision", "routing_span"]
