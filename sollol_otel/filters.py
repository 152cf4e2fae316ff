"""The event filter every reader applies (tail, stats, the dashboard's feeds and API), the time
range history is read over, and why a filter matched nothing.

Times are a duration back from now (`10m`, `2h`, `1h30m`) or a point in time (ISO 8601).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sollol_otel.events import Dimension, EventType, RoutingEvent
from sollol_otel.settings import duration_seconds

#: Where `q` looks, in the order a hint names them.
SEARCHED = ("model", "backend", "node", "reason", "message", "instance")


def _blank_none(value: str | None, lower: bool = False) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    return text.lower() if lower else text


def _contains(haystack: str | None, needle: str) -> bool:
    return haystack is not None and needle in haystack.lower()


@dataclass(frozen=True)
class EventFilter:
    """What an event must be to pass; every part given must hold, an empty filter passes all.

    - `model`: the model name starts with it, in any case (`llama` finds `llama3.2:3b`);
    - `backend`: exactly this backend (any string: routers invent backends);
    - `event_types`: any of these, in any case;
    - `instance`: the instance id starts with it;
    - `node`: the node (URL or RPC `host:port`) contains it, in any case;
    - `q`: model, backend, node, reason, message or instance contains it, in any case;
    - `trace_id`: the request's trace, in any case.
    """

    model: str | None = None
    backend: str | None = None
    event_types: frozenset[str] = field(default_factory=frozenset)
    instance: str | None = None
    node: str | None = None
    q: str | None = None
    trace_id: str | None = None

    @classmethod
    def build(
        cls,
        model: str | None = None,
        backend: str | None = None,
        event_types: Iterable[str] | str | None = None,
        instance: str | None = None,
        *,
        node: str | None = None,
        q: str | None = None,
        trace_id: str | None = None,
    ) -> EventFilter:
        """From user input: blanks mean "any", event types may be repeated or comma-separated."""
        if isinstance(event_types, str):
            event_types = [event_types]
        types = frozenset(
            part.strip().upper() for value in event_types or () for part in value.split(",") if part.strip()
        )
        return cls(
            model=_blank_none(model, lower=True),
            backend=_blank_none(backend),
            event_types=types,
            instance=_blank_none(instance),
            node=_blank_none(node, lower=True),
            q=_blank_none(q, lower=True),
            trace_id=_blank_none(trace_id, lower=True),
        )

    @property
    def is_empty(self) -> bool:
        return not (
            self.model
            or self.backend
            or self.event_types
            or self.instance
            or self.node
            or self.q
            or self.trace_id
        )

    def matches(self, event: RoutingEvent) -> bool:
        if self.event_types and event.event_type.upper() not in self.event_types:
            return False
        if self.model is not None and not (event.model or "").lower().startswith(self.model):
            return False
        if self.backend is not None and event.backend != self.backend:
            return False
        if self.instance is not None and not (event.instance_id or "").startswith(self.instance):
            return False
        if self.node is not None and not _contains(event.node, self.node):
            return False
        if self.trace_id is not None and (event.trace_id or "").lower() != self.trace_id:
            return False
        return self.q is None or searched(event, self.q)

    def label(self) -> str:
        """The filter as one line (`model=m event_type=A,B`), or `none`."""
        parts = [
            f"model={self.model}*" if self.model else "",
            f"backend={self.backend}" if self.backend else "",
            "event_type=" + ",".join(sorted(self.event_types)) if self.event_types else "",
            f"instance={self.instance}*" if self.instance else "",
            f"node=*{self.node}*" if self.node else "",
            f"q={self.q!r}" if self.q else "",
            f"trace_id={self.trace_id}" if self.trace_id else "",
        ]
        return " ".join(p for p in parts if p) or "none"


#: Stream ids count milliseconds from here; nothing is older.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def searched(event: RoutingEvent, needle: str) -> bool:
    """Whether any field `q` looks in contains `needle` (already lower case)."""
    return (
        _contains(event.model, needle)
        or _contains(event.backend, needle)
        or _contains(event.node, needle)
        or _contains(event.text("reason"), needle)
        or _contains(event.instance_id, needle)
        or _contains(event.message, needle)
    )


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """The moment `value` names, timezone-aware.

    Durations count back from now; ISO 8601 times without an offset are local time, as an
    operator types them. Raises ValueError with a message fit for the command line.
    """
    moment = now or datetime.now(timezone.utc)
    seconds = duration_seconds(value)
    try:
        if seconds is not None:
            parsed = moment - timedelta(seconds=seconds)
        else:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
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


@dataclass(frozen=True)
class Since:
    """A `--since` as typed, checked at once but placed in time later: a duration counts back from
    the clock it is given (Redis's, once a reader is connected, as stream ids carry Redis's time;
    a reader's own clock may be off by minutes); a point in time stands as written."""

    text: str

    @classmethod
    def parse(cls, text: str) -> Since:
        """ValueError as `parse_since` gives it, before anything connects."""
        parse_since(text)
        return cls(text)

    def at(self, now_ms: int) -> datetime:
        return parse_since(self.text, EPOCH + timedelta(milliseconds=now_ms))


@dataclass(frozen=True)
class TimeRange:
    """From `since` (included) to `until` (not included), by the time Redis added each event."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None, now: datetime | None = None) -> TimeRange:
        """Both as `parse_since` reads them; ValueError names the bad one, or an empty range."""
        moment = now or datetime.now(timezone.utc)
        bounds: list[datetime | None] = []
        for name, value in (("since", since), ("until", until)):
            text = (value or "").strip()
            try:
                bounds.append(parse_since(text, moment) if text else None)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        start, end = bounds
        if start is not None and end is not None and end <= start:
            raise ValueError(f"until ({end.isoformat()}) is not after since ({start.isoformat()})")
        return cls(start, end)

    @property
    def since_ms(self) -> int | None:
        return None if self.since is None else int(self.since.timestamp() * 1000)

    @property
    def until_ms(self) -> int | None:
        return None if self.until is None else int(self.until.timestamp() * 1000)

    @property
    def is_open(self) -> bool:
        return self.since is None and self.until is None

    def label(self) -> str:
        if self.is_open:
            return "all the stream holds"
        start = self.since.isoformat(timespec="seconds") if self.since else "the start"
        end = self.until.isoformat(timespec="seconds") if self.until else "now"
        return f"{start} to {end}"


#: Distinct values remembered per dimension when explaining a filter (clients name models freely).
MAX_DISTINCT = 1000
#: Names a hint lists at most.
MAX_NAMED = 5


class Explainer:
    """What a window holds, gathered event by event, to say why a filter matched none of it.

    Each part of the filter is judged alone: against the distinct values the window took (for
    names), or by counting the events it passes (for `q` and `trace_id`).
    """

    def __init__(self, event_filter: EventFilter) -> None:
        self.filter = event_filter
        self.events = 0
        self.values: dict[Dimension, set[str]] = {dimension: set() for dimension in Dimension}
        self.q_matches = 0
        self.trace_matches = 0

    def add(self, event: RoutingEvent) -> None:
        self.events += 1
        for dimension, values in self.values.items():
            if len(values) < MAX_DISTINCT:
                values.add(event.value(dimension))
        if self.filter.q is not None and searched(event, self.filter.q):
            self.q_matches += 1
        if self.filter.trace_id is not None and (event.trace_id or "").lower() == self.filter.trace_id:
            self.trace_matches += 1

    def hints(self, time_range: TimeRange | None = None) -> list[str]:
        """Sentences saying why nothing matched, each naming what would (a model that matches only
        partially, the event types that were written); the combination when every part matches alone."""
        if self.events == 0:
            where = "" if time_range is None or time_range.is_open else f" from {time_range.label()}"
            return [f"the stream holds no events{where}"]
        hints = [
            hint
            for hint in (
                self._event_type(),
                self._model(),
                self._backend(),
                self._instance(),
                self._node(),
                self._trace(),
                self._q(),
            )
            if hint
        ]
        return hints or [
            f"each part of the filter ({self.filter.label()}) matches events on its own, "
            "but no event matches all of them"
        ]

    def _event_type(self) -> str | None:
        wanted, present = self.filter.event_types, self.values[Dimension.EVENT_TYPE]
        if not wanted or wanted & present:
            return None
        unknown = sorted(t for t in wanted if t not in EventType.__members__)
        note = f" ({_named(unknown)}: not a type SOLLOL writes)" if unknown else ""
        return f"no {' or '.join(sorted(wanted))} event was written{note}; types present: {_named(present)}"

    def _model(self) -> str | None:
        model, present = self.filter.model, self.values[Dimension.MODEL]
        if model is None or any(v.lower().startswith(model) for v in present):
            return None
        partial = [v for v in present if model in v.lower()]
        if partial:
            return (
                f"model '{model}' is only part of {_named(partial)}: model matches the start of a name, "
                f"a search for '{model}' finds it anywhere"
            )
        return f"no model name starts with '{model}'; models present: {_named(present)}"

    def _backend(self) -> str | None:
        backend, present = self.filter.backend, self.values[Dimension.BACKEND]
        if backend is None or backend in present:
            return None
        other_case = [v for v in present if v.lower() == backend.lower()]
        if other_case:
            return f"backend matches exactly, and '{backend}' was written as {_named(other_case)}"
        return f"no event has backend '{backend}'; backends present: {_named(present)}"

    def _instance(self) -> str | None:
        instance, present = self.filter.instance, self.values[Dimension.INSTANCE]
        if instance is None or any(v.startswith(instance) for v in present):
            return None
        partial = [v for v in present if instance.lower() in v.lower()]
        if partial:
            return f"instance '{instance}' is only part of {_named(partial)}: instance matches an id's start"
        return f"no instance id starts with '{instance}'; instances present: {_named(present)}"

    def _node(self) -> str | None:
        node, present = self.filter.node, self.values[Dimension.NODE]
        if node is None or any(node in v.lower() for v in present):
            return None
        return f"no node contains '{node}'; nodes present: {_named(present)}"

    def _trace(self) -> str | None:
        if self.filter.trace_id is None or self.trace_matches:
            return None
        return f"no event of trace {self.filter.trace_id} is in the window (trimmed, or never recorded)"

    def _q(self) -> str | None:
        if self.filter.q is None or self.q_matches:
            return None
        return f"no event's {', '.join(SEARCHED[:-1])} or {SEARCHED[-1]} contains '{self.filter.q}'"


def _named(values: Iterable[str]) -> str:
    ordered = sorted(values)
    more = f" and {len(ordered) - MAX_NAMED} more" if len(ordered) > MAX_NAMED else ""
    return ", ".join(ordered[:MAX_NAMED]) + more
