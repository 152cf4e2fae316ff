"""`sollol-otel stats`: what the routers decided over a window, and how often they fell back.

Counts come from the stream (the live window Redis keeps), read newest-first in pages, so
every instance's decisions are in them. The fallback rate is fallbacks per routing decision
(ROUTE_DECISION and CACHE_HIT), the question operators ask when Ollama keeps failing over to RPC.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

import redis
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sollol_otel.cli.exit_codes import EXIT_OK, EXIT_REDIS
from sollol_otel.cli.output import OutputFormat, json_text
from sollol_otel.display import EVENT_STYLES, ColorMode, console_for, safe_text, time_zone
from sollol_otel.events import MISSING, Dimension, EventType, RoutingEvent
from sollol_otel.filters import MAX_DISTINCT, EventFilter, Explainer, Since, TimeRange
from sollol_otel.history.indexer import FLUSH_SECONDS
from sollol_otel.history.lease import LEASE_MS
from sollol_otel.history.query import History
from sollol_otel.redis.client import CONNECTION_ERRORS, async_client
from sollol_otel.redis.clock import id_ms, redis_now_ms
from sollol_otel.redis.stream import StreamReader, id_for_time
from sollol_otel.redis.urls import redact_url
from sollol_otel.web.counts import at_ms, bounded_range, top_values
from sollol_otel.web.from_history import (
    flat,
    gap_bounds,
    history_hints,
    open_history,
    stream_only_bound,
)
from sollol_otel.wire import Skipped

_PAGE = 5000
_DECISIONS = frozenset({EventType.ROUTE_DECISION, EventType.CACHE_HIT})
_READ_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, redis.ResponseError)


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class StreamMemory:
    """What the stream costs Redis (MEMORY USAGE, which samples), to size the retention with."""

    bytes: int
    entries: int
    #: Over the entries the stream holds (its first and last ids), whatever the filters.
    events_per_second: float | None

    @property
    def per_event(self) -> float | None:
        return self.bytes / self.entries if self.entries else None

    @property
    def per_hour(self) -> float | None:
        """Memory one hour of SOLLOL_ROUTING_STREAM_RETENTION takes at the current rate."""
        if self.per_event is None or self.events_per_second is None:
            return None
        return self.per_event * self.events_per_second * 3600

    def to_json(self) -> dict[str, Any]:
        return {
            "bytes": self.bytes,
            "entries": self.entries,
            "bytes_per_event": None if self.per_event is None else round(self.per_event, 1),
            "events_per_second": None if self.events_per_second is None else round(self.events_per_second, 3),
            "bytes_per_hour_of_retention": None if self.per_hour is None else round(self.per_hour),
        }

    def sizing(self) -> str:
        text = f"Redis memory: {_size(self.bytes)} for {self.entries} entries"
        if self.per_event is not None:
            text += f", ≈ {_size(self.per_event)} per event"
        if self.per_hour is not None and self.events_per_second is not None:
            rate = f"{self.events_per_second:.3g} events/s"
            text += f"; at {rate} an hour of retention takes ≈ {_size(self.per_hour)}"
        return text


async def stream_memory(client: Any, stream: str) -> StreamMemory | None:
    """None when the stream does not exist yet, or the ACL user may not run MEMORY USAGE."""
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.memory_usage(stream)
            pipe.xinfo_stream(stream)
            used, info = await pipe.execute()
    except redis.ResponseError:
        return None
    entries = int(info["length"])
    rate = None
    if entries > 1:
        first, last = (int(bytes(info[end][0]).partition(b"-")[0]) for end in ("first-entry", "last-entry"))
        rate = (entries - 1) / ((last - first) / 1000) if last > first else None
    return StreamMemory(int(used or 0), entries, rate)


def history_sizing(status: dict[str, Any]) -> str:
    """What the history holds and what a day of it costs on disk at the current rate."""
    text = f"history: {status.get('events', 0)} events, {_size(status.get('bytes', 0))} on disk"
    per_day = status.get("bytes_per_day")
    if per_day is not None:
        text += f"; a day at the current rate takes ≈ {_size(per_day)}"
    return text


@dataclass
class Stats:
    """Counts over one window; `add` one event at a time, in any order."""

    events: int = 0
    skipped: int = 0
    first: datetime | None = None
    last: datetime | None = None
    by_event_type: Counter[str] = field(default_factory=Counter)
    by_backend: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    by_node: Counter[str] = field(default_factory=Counter)
    by_instance: Counter[str] = field(default_factory=Counter)
    fallback_reasons: Counter[str] = field(default_factory=Counter)
    memory: StreamMemory | None = None
    #: Why nothing matched, when nothing did.
    hints: list[str] = field(default_factory=list)
    #: Events of values the source did not name (history names its top MAX_DISTINCT), per `by_*` key.
    unnamed: dict[str, int] = field(default_factory=dict)
    #: How the answer is partial (a gap in the history, a stream without one that lost events).
    bounds: list[str] = field(default_factory=list)
    #: What the history holds and costs (History.status), when there is one.
    history: dict[str, Any] | None = None

    def add(self, event: RoutingEvent, added_ms: int) -> None:
        """`added_ms`: when Redis added it (its stream id), the time every range is read by."""
        self.events += 1
        added = datetime.fromtimestamp(added_ms / 1000, tz=timezone.utc)
        self.first = added if self.first is None else min(self.first, added)
        self.last = added if self.last is None else max(self.last, added)
        self.by_event_type[event.value(Dimension.EVENT_TYPE)] += 1
        self.by_backend[event.value(Dimension.BACKEND)] += 1
        self.by_model[event.value(Dimension.MODEL)] += 1
        self.by_node[event.value(Dimension.NODE)] += 1
        self.by_instance[event.value(Dimension.INSTANCE)] += 1
        if event.event_type == EventType.FALLBACK_TRIGGERED:
            self.fallback_reasons[event.text("reason") or MISSING] += 1

    @property
    def decisions(self) -> int:
        return sum(self.by_event_type[kind] for kind in _DECISIONS)

    @property
    def fallbacks(self) -> int:
        return self.by_event_type[EventType.FALLBACK_TRIGGERED]

    @property
    def fallback_rate(self) -> float | None:
        """Fallbacks per routing decision; None when there were no decisions to fall back from."""
        return self.fallbacks / self.decisions if self.decisions else None

    def to_json(self, top: int) -> dict[str, Any]:
        """Each dimension's `top` values by name, the events of the rest in `other` beside them."""
        named: dict[str, dict[str, int]] = {}
        other: dict[str, int] = {}
        for key, counter in (
            ("by_event_type", self.by_event_type),
            ("by_backend", self.by_backend),
            ("by_model", self.by_model),
            ("by_node", self.by_node),
            ("by_instance", self.by_instance),
        ):
            named[key], rest = top_values(counter, top)
            if rest is not None or key in self.unnamed:
                other[key] = (rest or 0) + self.unnamed.get(key, 0)
        return {
            "window": {
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None,
            },
            "events": self.events,
            "skipped": self.skipped,
            **named,
            "top": top,
            "bounded": bool(other),
            "other": other,
            "routing_decisions": self.decisions,
            "fallbacks": self.fallbacks,
            "fallback_rate": self.fallback_rate,
            "top_fallback_reasons": [
                {"reason": reason, "count": count} for reason, count in self.fallback_reasons.most_common(top)
            ],
            "redis_memory": None if self.memory is None else self.memory.to_json(),
            "hints": self.hints,
            "bounds": self.bounds,
            "history": self.history,
        }


async def collect(client: Any, stream: str, since: datetime | None, event_filter: EventFilter) -> Stats:
    """The stats of every matching event since `since` (or all there is): from the history once an
    indexer has committed one, else from the stream, saying what that leaves out."""
    history = await open_history(client, stream)
    if history is not None:
        return await _from_history(history, await redis_now_ms(client), since, event_filter)
    stats = Stats()
    reader = StreamReader(client, stream)
    explainer = Explainer(event_filter)
    async for page in reader.pages_back(_PAGE, since=id_for_time(since) if since else None):
        for entry in page:
            if isinstance(entry.item, Skipped):
                stats.skipped += 1
                continue
            if not event_filter.is_empty:
                explainer.add(entry.item)
            if event_filter.matches(entry.item):
                stats.add(entry.item, id_ms(entry.id))
    if stats.events == 0:
        stats.hints = explainer.hints(TimeRange(since=since))
    stats.bounds = await stream_only_bound(client, stream, TimeRange(since=since))
    return stats


async def _from_history(
    history: History, now_ms: int, since: datetime | None, event_filter: EventFilter
) -> Stats:
    span = bounded_range(TimeRange(since=since), now_ms, None)
    answer = await history.stats(event_filter, span, now_ms=now_ms, top=MAX_DISTINCT)
    named, other = flat(answer)
    stats = Stats(
        events=int(answer["events"]),
        skipped=int(answer["skipped"]),
        by_event_type=Counter(named["by_event_type"]),
        by_backend=Counter(named["by_backend"]),
        by_model=Counter(named["by_model"]),
        by_node=Counter(named["by_node"]),
        by_instance=Counter(named["by_instance"]),
        fallback_reasons=Counter(named["top_fallback_reasons"]),
        unnamed=other,
        bounds=gap_bounds(answer["gaps"]),
        history=history.status(),
    )
    found = await history.span(event_filter, span, now_ms=now_ms)
    if found is not None:
        stats.first, stats.last = at_ms(found[0]), at_ms(found[1])
    if stats.events == 0:
        stats.hints = await history_hints(history, event_filter, span, TimeRange(since=since), now_ms)
    return stats


def _table(title: str, counts: Counter[str], top: int, styles: dict[str, str] | None = None) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(title)
    table.add_column("count", justify="right")
    for name, count in counts.most_common(top):
        table.add_row(Text(safe_text(name), style=(styles or {}).get(name, "")), Text(str(count)))
    if len(counts) > top:
        table.add_row(Text(f"… {len(counts) - top} more", style="dim"), Text(""))
    return table


def render_text(stats: Stats, console: Console, top: int, where: str) -> None:
    """The counts as small tables, every name from an event shown as plain text."""
    when = (
        f"{stats.first.astimezone():%Y-%m-%d %H:%M:%S} → {stats.last.astimezone():%Y-%m-%d %H:%M:%S} "
        f"{time_zone()}"
        if stats.first and stats.last
        else "no timed events"
    )
    console.print(Text(f"{stats.events} events ({when}), {stats.skipped} skipped as malformed", style="bold"))
    if stats.events == 0:
        console.print(Text(f"no event counted from {where}", style="yellow"))
    for hint in stats.hints:
        console.print(Text(f"nothing matched: {safe_text(hint)}", style="yellow"))
    rate = "n/a" if stats.fallback_rate is None else f"{stats.fallback_rate:.1%}"
    console.print(
        Text(f"fallback rate: {rate} ({stats.fallbacks} fallbacks / {stats.decisions} routing decisions)")
    )
    for said in stats.bounds:
        console.print(Text(f"partial: {safe_text(said)}", style="yellow"))
    if stats.memory is not None:
        console.print(Text(stats.memory.sizing(), style="dim"))
    if stats.history is not None:
        console.print(Text(history_sizing(stats.history), style="dim"))
        if stats.history.get("trim_warning"):
            console.print(Text(f"⚠ {stats.history['trim_warning']}", style="bold yellow"))
    for title, counts, rows, styles in (
        ("by event type", stats.by_event_type, len(stats.by_event_type), dict(EVENT_STYLES)),
        ("by backend", stats.by_backend, top, None),
        ("by model", stats.by_model, top, None),
        ("by node", stats.by_node, top, None),
        ("by instance", stats.by_instance, top, None),
        ("top fallback reasons", stats.fallback_reasons, top, None),
    ):
        if counts:
            console.print()
            console.print(_table(title, counts, rows, styles))


def trim_warning(memory: StreamMemory) -> str | None:
    """Whether the stream would trim entries before the indexer reads them: it must hold at least
    the rate times (the indexer's flush time + a lease takeover)."""
    lag = FLUSH_SECONDS + LEASE_MS / 1000
    rate = memory.events_per_second
    if rate is None or memory.entries >= rate * lag:
        return None
    return (
        f"the stream keeps {memory.entries} entries, fewer than {rate:.0f}/s × {lag:.0f}s (the indexer's "
        "flush and a takeover): entries may be trimmed before they are indexed; "
        "raise SOLLOL_ROUTING_STREAM_MAXLEN"
    )


async def _run(url: str, stream: str, since: Since | None, event_filter: EventFilter) -> Stats:
    client = await async_client(url, key=stream)
    try:
        start = since.at(await redis_now_ms(client)) if since else None
        stats = await collect(client, stream, start, event_filter)
        stats.memory = await stream_memory(client, stream)
        if stats.history is not None and stats.memory is not None:
            stats.history["trim_warning"] = trim_warning(stats.memory)
        return stats
    finally:
        await client.aclose()


def run(
    *,
    redis_url: str,
    stream: str,
    since: Since | None,
    event_filter: EventFilter,
    output: OutputFormat,
    color: ColorMode,
    top: int,
    out: TextIO,
    err: TextIO,
) -> int:
    """Prints the stats to `out`; a Redis that cannot be read is said on `err` with exit 1."""
    where = f"{safe_text(stream)} at {redact_url(redis_url)}"
    try:
        stats = asyncio.run(_run(redis_url, stream, since, event_filter))
    except _READ_ERRORS as exc:
        console_for(err, color).print(Text(f"cannot read {where}: {safe_text(exc)}", style="bold red"))
        return EXIT_REDIS
    if output is OutputFormat.json:
        source = {"stream": stream, "redis": redact_url(redis_url)}
        out.write(json_text({**stats.to_json(top), "source": source}) + "\n")
    else:
        render_text(stats, console_for(out, color), top, where)
    return EXIT_OK
