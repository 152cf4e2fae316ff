"""Fixtures for instrumentation: the real pipeline into Redis, spans and metrics kept in memory.

Decorators use the global tracer and meter providers (as instrumentation should), so the session
installs SDK providers with in-memory exporters once; each test clears what it saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from opentelemetry import metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from waiting import eventually

import sollol_otel
from sollol_otel import force_flush
from sollol_otel.wire import Skipped, decode


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="session")
def metric_reader() -> InMemoryMetricReader:
    reader = InMemoryMetricReader()
    if isinstance(metrics.get_meter_provider(), MeterProvider):
        pytest.skip("another test installed a global MeterProvider first; decision metrics need their own")
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


@dataclass
class Pipeline:
    """The configured pipeline of one test, and what reached Redis, the tracer and the meter."""

    client: redis.Redis
    stream: str
    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader

    def events(self, count: int | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wire events in the stream: at least `count` of them when given (waits up to `timeout`)."""
        force_flush(timeout)
        if count is None:
            return self._stream_events()
        return eventually(lambda: [] if len(found := self._stream_events()) < count else found, timeout)

    def _stream_events(self) -> list[dict[str, Any]]:
        found = []
        for _, fields in self.client.xrange(self.stream):
            event = decode(fields)
            assert not isinstance(event, Skipped), event
            found.append(dict(event.fields))
        return found

    def spans(self) -> list[ReadableSpan]:
        return list(self.span_exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        matches = [s for s in self.spans() if s.name == name]
        assert len(matches) == 1, [s.name for s in self.spans()]
        return matches[0]

    def points(self, metric: str) -> list[Any]:
        """Data points of `metric`, once every event emitted so far has been counted."""
        force_flush()
        data = self.metric_reader.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]


@pytest.fixture
def pipeline(
    keys: tuple[str, str],
    redis_client: redis.Redis,
    span_exporter: InMemorySpanExporter,
    metric_reader: InMemoryMetricReader,
) -> Iterator[Pipeline]:
    """Recording on, into this test's stream; configure() counts decision metrics on the global meter."""
    logs = LoggerProvider()
    sollol_otel.configure(logger_provider=logs)
    span_exporter.clear()
    yield Pipeline(redis_client, keys[0], span_exporter, metric_reader)
    sollol_otel.shutdown(timeout=2.0)
    span_exporter.clear()
