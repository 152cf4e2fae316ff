"""Decision metrics through OpenTelemetry metrics, for Prometheus and Grafana via OTLP.

- `sollol.routing.decisions` (counter, `{decision}`): by `sollol.event_type`, `sollol.backend`.
- `sollol.routing.fallbacks` (counter, `{fallback}`): by `error.type` (the reason's class),
  `sollol.from_backend`, `sollol.backend`.
- `sollol.routing.decision.duration` (histogram, `s`): by `sollol.event_type`, `sollol.backend`,
  and `error.type` when the decision failed.

Counters are fed by `DecisionMetricsProcessor`, a log record processor that sees every routing
event whoever emitted it (our decorators, the Instrumentor's SOLLOL call sites, direct
`RoutingLogger` calls), so each decision is counted exactly once. The histogram is fed by the
code that times a decision (the decorators and the Instrumentor), as only it knows how long
the decision took. Model names stay out of the attributes: they come from client requests and
would give metrics unbounded cardinality.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version

from opentelemetry import metrics
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.util.types import AttributeValue

from ..attributes import ERROR_TYPE, NAMESPACE
from ..events import EVENT_NAME_PREFIX, EventType

_log = logging.getLogger(__name__)

SCOPE = "sollol_otel.instrumentation"
DECISIONS = "sollol.routing.decisions"
FALLBACKS = "sollol.routing.fallbacks"
DECISION_DURATION = "sollol.routing.decision.duration"

EVENT_TYPE_ATTRIBUTE = NAMESPACE + "event_type"
BACKEND_ATTRIBUTE = NAMESPACE + "backend"
FROM_BACKEND_ATTRIBUTE = NAMESPACE + "from_backend"
#: The value an absent backend or reason class is counted under, so series are never dropped.
NONE = "none"
#: From 50 µs (a decision in memory) to 10 s (one that waits on a node): decisions span both.
DURATION_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def _label(value: object) -> str:
    return NONE if value is None or value == "" else str(value)


class DecisionMetrics:
    """The three instruments, on the given meter provider or the global one."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        meter = metrics.get_meter(SCOPE, package_version(), meter_provider)
        self._decisions = meter.create_counter(
            DECISIONS, unit="{decision}", description="Routing decisions, by event type and backend."
        )
        self._fallbacks = meter.create_counter(
            FALLBACKS, unit="{fallback}", description="Fallbacks and failed decisions, by reason class."
        )
        self._duration = meter.create_histogram(
            DECISION_DURATION,
            unit="s",
            description="Time a router took to decide, from the call to its return or exception.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def count(self, event_type: str, attributes: Mapping[str, AttributeValue]) -> None:
        """Count one recorded event given its OTel attributes."""
        backend = _label(attributes.get(BACKEND_ATTRIBUTE))
        self._decisions.add(1, {EVENT_TYPE_ATTRIBUTE: event_type, BACKEND_ATTRIBUTE: backend})
        if event_type == EventType.FALLBACK_TRIGGERED:
            self._fallbacks.add(
                1,
                {
                    ERROR_TYPE: _label(attributes.get(ERROR_TYPE)),
                    FROM_BACKEND_ATTRIBUTE: _label(attributes.get(FROM_BACKEND_ATTRIBUTE)),
                    BACKEND_ATTRIBUTE: backend,
                },
            )

    def observe_duration(
        self, seconds: float, event_type: str, backend: object, error_type: str | None = None
    ) -> None:
        attributes: dict[str, AttributeValue] = {
            EVENT_TYPE_ATTRIBUTE: event_type,
            BACKEND_ATTRIBUTE: _label(backend),
        }
        if error_type is not None:
            attributes[ERROR_TYPE] = error_type
        self._duration.record(seconds, attributes)


def package_version() -> str:
    """Our distribution's version, for instrumentation scopes."""
    try:
        return version("sollol-otel")
    except PackageNotFoundError:
        return "0"


_default: DecisionMetrics | None = None


def decision_metrics() -> DecisionMetrics:
    """The process-wide instruments on the global meter provider (proxied until one is set)."""
    global _default
    if _default is None:
        _default = DecisionMetrics()
    return _default


class DecisionMetricsProcessor(LogRecordProcessor):
    """Counts every routing event as it is emitted; costs the caller two counter adds."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        self._metrics = decision_metrics() if meter_provider is None else DecisionMetrics(meter_provider)
        self._failed_once = False

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        name = record.event_name
        if not name or not name.startswith(EVENT_NAME_PREFIX):
            return
        try:
            self._metrics.count(name[len(EVENT_NAME_PREFIX) :].upper(), record.attributes or {})
        except Exception:
            if not self._failed_once:
                self._failed_once = True
                _log.exception("sollol-otel could not count a routing event; further failures are silent")

    def shutdown(self) -> None:
        """Nothing to release: the meter provider owns the instruments."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
