"""The delivery ledger: where every routing event is (delivered, dropped with a reason, pending),
readable from Python as `BridgeStats` and exported as OTel metrics.

The Redis writer fills one for what it is given; the recording pipeline adds its own stages in
front (the caller-side queues, the OTel SDK), so `bridge_stats()` accounts for every decision
from the moment it was recorded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from opentelemetry.metrics import CallbackOptions, Meter, Observation

#: Writing works (or nothing was written yet).
OK = "ok"
#: Redis does not answer: refused connection, timeout, reset. Events wait in the backlog.
UNREACHABLE = "unreachable"
#: Redis answers but refuses the writes (WRONGTYPE, OOM, READONLY, NOPERM...). Events wait in the backlog.
REFUSED = "refused"
#: Events reach the stream, but Redis refuses PUBLISH on the channel.
PUBLISH_REFUSED = "publish refused"
#: Shut down: the ledger is final.
STOPPED = "stopped"
#: Recording is off, or was never configured.
OFF = "off"

# Why an event was dropped: a fixed vocabulary (metric attribute values), the detail is in the log.
#: A caller-side queue was full: the oldest decision made room for the newest.
QUEUE_FULL = "queue full"
#: Recording a decision failed on the caller's thread (a bug; logged once).
RECORD_FAILED = "record failed"
#: Emitting the log event through the OTel SDK failed (logged once).
EMIT_FAILED = "emit failed"
#: The OTel SDK did not pass an emitted record on (its provider was shut down, or a filter).
NOT_PASSED_ON = "not passed on by the OTel SDK"
#: A record could not be turned into a wire event (logged once).
NOT_CONVERTED = "not converted"
#: The writer's backlog was full while Redis was away or refusing: the oldest made room.
BACKLOG_FULL = "backlog full"
#: Not even a repaired form of the event is JSON (foreign senders only: circular, absurdly deep).
UNENCODABLE = "unencodable"
#: Redis refused this event itself (an error that is not a server state).
REFUSED_BY_REDIS = "refused by Redis"
#: Still pending when shutdown ran out of time (what Redis was doing is in the shutdown report).
NOT_DELIVERED_AT_SHUTDOWN = "not delivered at shutdown"
#: Sent to Redis, no answer before shutdown: maybe in the stream, maybe not.
UNCONFIRMED_AT_SHUTDOWN = "unconfirmed at shutdown"


@dataclass(frozen=True)
class BridgeStats:
    """Where every routing event recorded since start is.

    `recorded == exported + dropped + backlog` whenever the pipeline is at rest (a reading taken
    while events move between stages may be off by the batch in motion). Nothing delivered is
    counted as dropped, nothing dropped without a reason.
    """

    exported: int  # delivered: in the stream, once
    dropped: int  # lost, the sum of `dropped_by`
    retried: int  # write attempts that failed and were tried again
    backlog: int  # pending: recorded, not yet delivered or dropped, in every stage
    connected: bool  # the last attempt reached Redis
    recorded: int = 0
    dropped_by: Mapping[str, int] = field(default_factory=dict)
    healthy: bool = False  # writing works: state is "ok"
    state: str = OFF
    last_error: str | None = None  # the last Redis error, passwords redacted
    repaired: int = 0  # encoded after repair: lone surrogates replaced, odd values as text
    unpublished: int = 0  # in the stream, but their PUBLISH was refused
    rejected: Mapping[str, int] = field(default_factory=dict)  # metadata values cut or replaced, by reason

    def behind(self, recorded: int, dropped_by: Mapping[str, int], pending: int) -> BridgeStats:
        """These counts with the stages in front of this one: events they dropped or still hold."""
        merged = Counter(self.dropped_by)
        merged.update({reason: count for reason, count in dropped_by.items() if count})
        return replace(
            self,
            recorded=recorded,
            dropped=sum(merged.values()),
            dropped_by=dict(merged),
            backlog=self.backlog + pending,
        )


@dataclass(frozen=True)
class Instrument:
    """An observable instrument reading one `BridgeStats` field."""

    name: str
    unit: str
    description: str
    gauge: bool = False


#: The in-process bridge's instruments, by the field each reads.
BRIDGE_INSTRUMENTS = {
    "recorded": Instrument("sollol_otel.bridge.recorded", "{event}", "Routing events recorded"),
    "exported": Instrument("sollol_otel.bridge.exported", "{event}", "Routing events written to Redis"),
    "dropped": Instrument(
        "sollol_otel.bridge.dropped", "{event}", "Routing events lost before Redis, by reason"
    ),
    "retried": Instrument("sollol_otel.bridge.retried", "{attempt}", "Failed Redis writes, retried"),
    "backlog": Instrument(
        "sollol_otel.bridge.backlog", "{event}", "Routing events waiting for Redis", gauge=True
    ),
    "healthy": Instrument(
        "sollol_otel.bridge.healthy", "1", "1 while routing events can be written to Redis", gauge=True
    ),
}


def observe(
    meter: Meter, stats: Callable[[], BridgeStats], instruments: Mapping[str, Instrument] = BRIDGE_INSTRUMENTS
) -> None:
    """Register observable instruments that read `stats()` at each collection (`dropped` by reason):
    the bridge's, or another writer's under its own names (the OTLP receiver's)."""

    def reading(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_: CallbackOptions) -> Iterable[Observation]:
            current = stats()
            if name == "dropped" and current.dropped_by:
                return [
                    Observation(count, {"reason": reason}) for reason, count in current.dropped_by.items()
                ]
            return [Observation(int(getattr(current, name)))]

        return callback

    for field_name, spec in instruments.items():
        create = meter.create_observable_gauge if spec.gauge else meter.create_observable_counter
        create(spec.name, [reading(field_name)], unit=spec.unit, description=spec.description)
