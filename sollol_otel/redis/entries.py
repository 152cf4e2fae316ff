"""What a stream reader hands on: entries and gaps. Apart from the reader so that `tail --history`
can hand on the same without importing redis-py (see `resp.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from sollol_otel.events import RoutingEvent
from sollol_otel.wire import Skipped


@dataclass(frozen=True)
class StreamEntry:
    """One stream entry: its id and what it decoded to."""

    id: str
    item: RoutingEvent | Skipped


@dataclass(frozen=True)
class Gap:
    """Events the reader can no longer deliver: trimmed from the stream, or lost with it."""

    after_id: str
    first_id: str | None
    missed: int | None  # None: the count cannot be known (resume point from outside, stream reset)
    reset: bool = False

    def explain(self) -> str:
        if self.reset:
            trimmed = (
                f"{self.missed} of its events were trimmed before they could be read; " if self.missed else ""
            )
            return (
                f"the stream was replaced (Redis restarted, its key deleted, or a failover) after "
                f"{self.after_id}: reading on in the new one; {trimmed}whatever the old one held after "
                "that id and was not read yet is gone, how much cannot be known"
            )
        count = "an unknown number of" if self.missed is None else str(self.missed)
        return f"{count} events after {self.after_id} were missed: trimmed"
