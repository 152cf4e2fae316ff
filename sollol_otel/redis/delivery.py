"""The bridge's own health as OTel metrics: delivered, dropped, retried, waiting."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Meter, Observation


@dataclass(frozen=True)
class BridgeStats:
    """What the bridge has done since start, readable from Python and exported as metrics.

    `dropped` counts events lost anywhere on the way: the caller-side queue (full) and the Redis
    backlog (full while Redis was away, or rejected by Redis).
    """

    exported: int
    dropped: int
    retried: int
    backlog: int
    connected: bool


def observe(meter: Meter, stats: Callable[[], BridgeStats]) -> None:
    """Register observable instruments that read `stats()` at each collection."""

    def reading(field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(getattr(stats(), field))]

        return callback

    instruments = [
        (meter.create_observable_counter, "exported", "{event}", "Routing events written to Redis"),
        (meter.create_observable_counter, "dropped", "{event}", "Routing events lost before Redis"),
        (meter.create_observable_counter, "retried", "{attempt}", "Failed Redis writes, retried"),
        (meter.create_observable_gauge, "backlog", "{event}", "Routing events waiting for Redis"),
    ]
    for create, name, unit, description in instruments:
        create(f"sollol_otel.bridge.{name}", [reading(name)], unit=unit, description=description)
