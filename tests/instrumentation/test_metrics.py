"""Decision metrics: every recorded decision counted once, fallbacks by reason class, decisions timed."""

from __future__ import annotations

import uuid

import pytest

import sollol_otel
from sollol_otel import EventType
from sollol_otel.instrumentation import record_decision
from sollol_otel.recording.exporters.decision_metrics import DECISION_DURATION, DECISIONS, FALLBACKS

from .conftest import Pipeline


@pytest.fixture
def backend() -> str:
    """A backend name of this test's own: metrics are cumulative over the session."""
    return f"backend-{uuid.uuid4().hex[:8]}"


def test_decisions_are_counted_by_event_type_and_backend(pipeline: Pipeline, backend: str) -> None:
    logger = sollol_otel.get_routing_logger()
    logger.log_route_decision("llama3.2:3b", backend, "sufficient_resources")
    logger.log_route_decision("llama3.2:3b", backend, "cached", cached=True)
    logger.log_route_decision("qwen2.5:7b", backend, "sufficient_resources")
    counts = {
        p.attributes["sollol.event_type"]: p.value
        for p in pipeline.points(DECISIONS)
        if p.attributes["sollol.backend"] == backend
    }
    assert counts == {"ROUTE_DECISION": 2, "CACHE_HIT": 1}


def test_fallbacks_are_counted_by_reason_class(pipeline: Pipeline, backend: str) -> None:
    logger = sollol_otel.get_routing_logger()
    logger.log_fallback("codellama:13b", "ollama", backend, "ollama_error: Out of memory")
    logger.log_fallback("codellama:13b", "ollama", backend, "ollama_error: timed out")
    logger.log_fallback("codellama:13b", "ollama", backend, "insufficient_resources")
    counts = {
        (p.attributes["error.type"], p.attributes["sollol.from_backend"]): p.value
        for p in pipeline.points(FALLBACKS)
        if p.attributes["sollol.backend"] == backend
    }
    assert counts == {("ollama_error", "ollama"): 2, ("insufficient_resources", "ollama"): 1}


def test_a_decorated_decision_is_timed_in_the_duration_histogram(pipeline: Pipeline, backend: str) -> None:
    @record_decision(EventType.ROUTE_DECISION, backend=lambda chosen: chosen)
    def decide(model: str) -> str:
        return backend

    decide("llama3.2:3b")
    decide("llama3.2:3b")
    [point] = [p for p in pipeline.points(DECISION_DURATION) if p.attributes["sollol.backend"] == backend]
    assert point.count == 2
    assert 0 < point.sum < 1
    assert point.attributes["sollol.event_type"] == "ROUTE_DECISION"


def test_a_failed_decision_is_timed_with_its_error_type(pipeline: Pipeline, backend: str) -> None:
    @record_decision(EventType.ROUTE_DECISION, backend="pool")
    def decide(model: str, pool: str) -> str:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        decide("llama3.2:3b", backend)
    [point] = [p for p in pipeline.points(DECISION_DURATION) if p.attributes["sollol.backend"] == backend]
    assert point.attributes["error.type"] == "ConnectionError"
