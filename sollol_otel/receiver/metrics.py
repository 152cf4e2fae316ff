"""The receiver's counters as OTel metrics (as the bridge's are), served on /metrics for Prometheus.

Each receiver has its own MeterProvider whose PrometheusMetricReader feeds a private
prometheus_client registry, so two receivers in one process (tests) never mix their counts.
Prometheus names follow from the instrument names: `sollol.receiver.requests` is scraped as
`sollol_receiver_requests_total`, the names this endpoint has always had.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sollol_otel.receiver.records import Decoded, Signal
from sollol_otel.redis import delivery
from sollol_otel.redis.delivery import BridgeStats, Instrument

SCOPE = "sollol_otel.receiver"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: What the receiver's Redis writer did, registered as the bridge's are, under the receiver's names.
REDIS_INSTRUMENTS = {
    "exported": Instrument(
        "sollol.receiver.redis.written", "{event}", "Events written to Redis by this process."
    ),
    "dropped": Instrument(
        "sollol.receiver.redis.dropped",
        "{event}",
        "Events dropped because Redis did not take them, by reason.",
    ),
    "backlog": Instrument(
        "sollol.receiver.redis.backlog", "{event}", "Events waiting for Redis.", gauge=True
    ),
    "healthy": Instrument(
        "sollol.receiver.redis.up",
        "",
        "Whether writing to Redis works (the last write succeeded).",
        gauge=True,
    ),
}


class ReceiverMetrics:
    """Requests by signal and HTTP status; events by outcome; what the Redis writer did."""

    def __init__(self, writer_stats: Callable[[], BridgeStats], bytes_in_flight: Callable[[], int]) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        reader = PrometheusMetricReader(
            disable_target_info=True, scope_info_enabled=False, registry=self._registry
        )
        self._provider = MeterProvider(
            metric_readers=[reader], resource=Resource.get_empty(), shutdown_on_exit=False
        )
        meter = self._provider.get_meter(SCOPE)
        self._requests = meter.create_counter(
            "sollol.receiver.requests", "{request}", "OTLP export requests by signal and HTTP status."
        )
        self._events = meter.create_counter(
            "sollol.receiver.events",
            "{event}",
            "Routing records received, by outcome: accepted (written), duplicate (a decision already "
            "written), rejected (log records or spans, as OTLP counts them).",
        )
        self._altered = meter.create_counter(
            "sollol.receiver.events.altered",
            "{event}",
            "Accepted routing events changed to be readable: invalid UTF-8 replaced, or truncated.",
        )
        delivery.observe(meter, writer_stats, REDIS_INSTRUMENTS)
        meter.create_observable_gauge(
            "sollol.receiver.in_flight",
            [lambda _: [Observation(bytes_in_flight())]],
            "By",
            "Request bytes being read or decoded now (capped; over the cap requests get 503).",
        )

    def request(self, signal: Signal, status_code: int) -> None:
        self._requests.add(1, {"signal": signal.value, "code": str(status_code)})

    def accepted(self, signal: Signal, decoded: Decoded, written: int) -> None:
        """Count what a request held: written, merged as duplicates, rejected, altered."""
        for outcome, count in (
            ("accepted", written),
            ("duplicate", decoded.duplicates),
            ("rejected", decoded.rejected),
        ):
            self._events.add(count, {"signal": signal.value, "outcome": outcome})
        for alteration, count in (("repaired", decoded.repaired), ("truncated", decoded.truncated)):
            if count:
                self._altered.add(count, {"signal": signal.value, "alteration": alteration})

    def exposition(self) -> bytes:
        """The Prometheus text format of every counter, read now."""
        return generate_latest(self._registry)

    def shutdown(self) -> None:
        self._provider.shutdown()
