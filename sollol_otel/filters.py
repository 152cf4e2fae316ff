"""The event filter every reader applies (tail, the dashboard feeds, the history API), and the
times it starts from: a duration back from now (`10m`, `2h`, `1h30m`) or a point in time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sollol_otel.events import RoutingEvent
from sollol_otel.settings import duration_seconds


@dataclass(frozen=True)
class EventFilter:
    """Model and backend match exactly; event types case-insensitively; instance by prefix.

    An empty filter passes everything. Backend is any string, not a fixed list: routers
    invent backends.
    """

    model: str | None = None
    backend: str | None = None
    event_types: frozenset[str] = field(default_factory=frozenset)
    instance: str | None = None

    @classmethod
    def build(
        cls,
        model: str | None = None,
        backend: str | None = None,
        event_types: Iterable[str] | str | None = None,
        instance: str | None = None,
    ) -> EventFilter:
        """From user input: blanks mean "any", event types may be comma-separated."""
        if isinstance(event_types, str):
            event_types = [event_types]
        types = frozenset(
            part.strip().upper() for value in event_types or () for part in value.split(",") if part.strip()
        )
        return cls(model=model or None, backend=backend or None, event_types=types, instance=instance or None)

    @property
    def is_empty(self) -> bool:
        return not (self.model or self.backend or self.event_types or self.instance)

    def matches(self, event: RoutingEvent) -> bool:
        if self.event_types and event.event_type.upper() not in self.event_types:
            return False
        if self.model is not None and event.model != self.model:
            return False
        if self.backend is not None and event.backend != self.backend:
            return False
        return self.instance is None or (event.instance_id or "").startswith(self.instance)

    def label(self) -> str:
        """The filter as one line (`model=m event_type=A,B`), or `none`."""
        parts = [
            f"model={self.model}" if self.model else "",
            f"backend={self.backend}" if self.backend else "",
        ]
        if self.event_types:
            parts.append("event_type=" + ",".join(sorted(self.event_types)))
        if self.instance:
            parts.append(f"instance={self.instance}*")
        return " ".join(p for p in parts if p) or "none"


#: Stream ids count milliseconds from here; nothing is older.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """The moment `value` names, timezone-aware.

    Durations count back from now; ISO 8601 times without an offset are local time, as an
    operator types them. Raises ValueError with a message fit for the command line.
    """
    text = value.strip()
    moment = now or datetime.now(timezone.utc)
    seconds = duration_seconds(text)
    try:
        if seconds is not None:
            parsed = moment - timedelta(seconds=seconds)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            parsed = parsed if parsed.tzinfo else parsed.astimezone()
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a duration (like 30s, 10m, 2h, 1h30m, 1d) nor an ISO 8601 time"
        ) from None
    except OverflowError:
        parsed = EPOCH - timedelta(seconds=1)
    if parsed < EPOCH:
        raise ValueError(f"{value!r} is before 1970, where stream ids (epoch milliseconds) begin")
    return parsed
