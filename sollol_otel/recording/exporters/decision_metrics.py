"""Decision metrics through OpenTelemetry metrics, for Prometheus and Grafana via OTLP.

- `sollol.routing.decisions` (counter, `{decision}`): by `sollol.event_type`, `sollol.backend`.
- `sollol.routing.fallbacks` (counter, `{fallback}`): by `error.type` (the reason's class),
  `sollol.from_backend`, `sollol.backend`.
- `sollol.routing.decision.duration` (histogram, `s`): by `sollol.event_type`, `sollol.backend`;
  a failed decision counts as FALLBACK_TRIGGERED, with the backend that failed and `error.type`.
- `sollol.routing.node_selections` (counter, `{selection}`): OLLAMA_NODE_SELECTED and
  RPC_BACKEND_SELECTED by `sollol.backend`, `server.address`, `server.port`: the node chosen.
  Operators run the nodes and keep them few, so these labels stay bounded; an alert can see
  one node no longer chosen while others are.

They are computed from the routing events themselves, on a background thread: the caller pays
one queue append. `configure()` runs the exporter beside the Redis bridge, so it sees every
routing event whoever emitted it (our decorators, the Instrumentor's SOLLOL call sites, direct
`RoutingLogger` calls) and each decision is counted exactly once; events that carry a
`decision_ms` (the decorators time each decision) also feed the histogram. Model names stay
out of the attributes: they come from client requests and would make cardinality unbounded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from opentelemetry import metrics
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.util.types import AttributeValue

from sollol_otel.attributes import BACKEND as BACKEND_ATTRIBUTE
from sollol_otel.attributes import ERROR_TYPE, NAMESPACE, SERVER_ADDRESS, SERVER_PORT
from sollol_otel.events import EventType, event_type_of
from sollol_otel.identity import package_version

SCOPE = "sollol_otel.instrumentation"
DECISIONS = "sollol.routing.decisions"
FALLBACKS = "sollol.routing.fallbacks"
DECISION_DURATION = "sollol.routing.decision.duration"
NODE_SELECTIONS = "sollol.routing.node_selections"
NODE_SELECTED = frozenset({EventType.OLLAMA_NODE_SELECTED, EventType.RPC_BACKEND_SELECTED})

EVENT_TYPE_ATTRIBUTE = NAMESPACE + "event_type"
FROM_BACKEND_ATTRIBUTE = NAMESPACE + "from_backend"
#: Set by the decorators on every decision they time (and on its failure event).
DECISION_MS_ATTRIBUTE = NAMESPACE + "decision_ms"
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
    """The four instruments, on the given meter provider or the global one."""

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
        self._node_selections = meter.create_counter(
            NODE_SELECTIONS, unit="{selection}", description="Nodes chosen, by backend and node address."
        )

    def count(self, events: Iterable[tuple[str, Mapping[str, AttributeValue]]]) -> None:
        """Count recorded events given their type and OTel attributes: one add per series per batch."""
        decisions: Counter[tuple[str, str]] = Counter()
        fallbacks: Counter[tuple[str, str, str]] = Counter()
        nodes: Counter[tuple[str, str, str]] = Counter()
        for event_type, attributes in events:
            backend = _label(attributes.get(BACKEND_ATTRIBUTE))
            decisions[event_type, backend] += 1
            if event_type == EventType.FALLBACK_TRIGGERED:
                error = _label(attributes.get(ERROR_TYPE))
                fallbacks[error, _label(attributes.get(FROM_BACKEND_ATTRIBUTE)), backend] += 1
            elif event_type in NODE_SELECTED and attributes.get(SERVER_ADDRESS):
                nodes[backend, str(attributes[SERVER_ADDRESS]), _label(attributes.get(SERVER_PORT))] += 1
        for (event_type, backend), count in decisions.items():
            self._decisions.add(count, {EVENT_TYPE_ATTRIBUTE: event_type, BACKEND_ATTRIBUTE: backend})
        for (error, from_backend, backend), count in fallbacks.items():
            self._fallbacks.add(
                count, {ERROR_TYPE: error, FROM_BACKEND_ATTRIBUTE: from_backend, BACKEND_ATTRIBUTE: backend}
            )
        for (backend, address, port), count in nodes.items():
            self._node_selections.add(
                count, {BACKEND_ATTRIBUTE: backend, SERVER_ADDRESS: address, SERVER_PORT: port}
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


_default: DecisionMetrics | None = None


def decision_metrics() -> DecisionMetrics:
    """The process-wide instruments on the global meter provider (proxied until one is set)."""
    global _default
    if _default is None:
        _default = DecisionMetrics()
    return _default


class DecisionMetricsExporter(LogRecordExporter):
    """Turns batches of routing log records into metric measurements."""

    def __init__(
        self,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        instruments: Callable[[], DecisionMetrics] | None = None,
    ) -> None:
        """On `meter_provider` (else the global one), or on whatever `instruments()` gives at each
        batch: the metrics endpoint's, renewed in a forked child."""
        if instruments is None:
            fixed = decision_metrics() if meter_provider is None else DecisionMetrics(meter_provider)

            def instruments() -> DecisionMetrics:
                return fixed

        self._instruments = instruments

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        instruments = self._instruments()
        events = []
        for readable in batch:
            record = readable.log_record
            event_type = event_type_of(record.event_name)
            if event_type is None:
                continue
            attributes = record.attributes or {}
            events.append((event_type, attributes))
            milliseconds = attributes.get(DECISION_MS_ATTRIBUTE)
            if isinstance(milliseconds, (int, float)) and not isinstance(milliseconds, bool):
                failed = event_type == EventType.FALLBACK_TRIGGERED
                instruments.observe_duration(
                    milliseconds / 1000,
                    event_type,
                    attributes.get(FROM_BACKEND_ATTRIBUTE if failed else BACKEND_ATTRIBUTE),
                    str(attributes.get(ERROR_TYPE, "_OTHER")) if failed else None,
                )
        instruments.count(events)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release: the meter provider owns the instruments."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
