"""Counts over the retained window (by event type, backend, model, node, instance), recent rates,
the top fallback reasons, and why a filter matched nothing.

Computed from the stream itself, so every dashboard process agrees; decoding runs in a worker
thread so a large window never stalls the live feeds, and results are cached briefly (the
timeline shares the window reader and the cache).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio

from sollol_otel.events import MISSING, Dimension, EventType, RoutingEvent
from sollol_otel.filters import EventFilter, Explainer, TimeRange
from sollol_otel.redis.stream import stream_key
from sollol_otel.web.backlog import range_bounds
from sollol_otel.wire import as_text, decode

#: Entries fetched per round trip.
PAGE = 5000
#: Most entries counted; a stream kept longer than this is counted from its newest end.
MAX_WINDOW = 100_000
#: Distinct models, nodes, instances or reasons listed (they come from clients: unbounded).
TOP = 50
#: Seconds a result is reused for the same query.
CACHE_SECONDS = 2.0
#: Most distinct queries cached at once.
CACHE_SIZE = 100
RATE_WINDOWS = (10, 60)
#: Seconds of per-second counts sent (up to the window's end), for a page that keeps the rate live.
PER_SECOND = 60

RawEntry = tuple[Any, Mapping[Any, Any]]
T = TypeVar("T")


def entry_ms(raw_id: bytes | str) -> int:
    """The epoch milliseconds Redis stamped on an entry (the first half of its id)."""
    return stream_key(raw_id.decode() if isinstance(raw_id, bytes) else raw_id)[0]


@dataclass(frozen=True)
class Window:
    """Raw entries of a time range up to `last_id`, newest first; `complete` is False when
    MAX_WINDOW cut it short."""

    entries: list[RawEntry]
    complete: bool
    #: Everything up to this id, and nothing after it, was read: a page counts live events after it.
    last_id: str

    def summary(self) -> dict[str, Any]:
        return {
            "entries": len(self.entries),
            "first_id": as_text(self.entries[-1][0]) if self.entries else None,
            "last_id": as_text(self.entries[0][0]) if self.entries else None,
            "complete": self.complete,
        }


async def stream_end(client: redis.asyncio.Redis, stream: str) -> str:
    """The newest id the stream ever had (`0-0` before the first write)."""
    try:
        info: dict[str, Any] = await client.xinfo_stream(stream)
    except redis.ResponseError:  # no such key yet
        return "0-0"
    return as_text(info["last-generated-id"])


async def read_window(
    client: redis.asyncio.Redis, stream: str, time_range: TimeRange, last_id: str | None = None
) -> Window:
    """Every entry in the range up to `last_id` (the stream's end when None), newest first,
    undecoded, at most MAX_WINDOW of them."""
    last_id = last_id or await stream_end(client, stream)
    since, before = range_bounds(time_range)
    upper = last_id if before is None or stream_key(last_id) < stream_key(before) else f"({before}"
    entries: list[RawEntry] = []
    while len(entries) < MAX_WINDOW:
        page: Any = await client.xrevrange(stream, max=upper, min=since or "-", count=PAGE)
        entries.extend(page)
        if len(page) < PAGE:
            return Window(entries, complete=True, last_id=last_id)
        upper = "(" + as_text(page[-1][0])
    return Window(entries, complete=False, last_id=last_id)


def _top(counter: Counter[str]) -> dict[str, int]:
    return dict(counter.most_common(TOP))


def aggregate(
    entries: list[RawEntry], event_filter: EventFilter, time_range: TimeRange, now_ms: int
) -> dict[str, Any]:
    """The counts for raw XRANGE entries; pure, so it can run in a thread."""
    counts = {dimension: Counter[str]() for dimension in Dimension}
    fallback_reasons: Counter[str] = Counter()
    recent = dict.fromkeys(RATE_WINDOWS, 0)
    last_second = now_ms // 1000
    per_second = [0] * PER_SECOND
    explainer = None if event_filter.is_empty else Explainer(event_filter)
    skipped = matched = 0
    for raw_id, fields in entries:
        event = decode(fields)
        if not isinstance(event, RoutingEvent):
            skipped += 1
            continue
        if explainer is not None:
            explainer.add(event)
        if not event_filter.matches(event):
            continue
        matched += 1
        for dimension, counter in counts.items():
            counter[event.value(dimension)] += 1
        if event.event_type == EventType.FALLBACK_TRIGGERED:
            fallback_reasons[event.text("reason") or MISSING] += 1
        added_ms = entry_ms(raw_id)
        age_ms = now_ms - added_ms
        for seconds in RATE_WINDOWS:
            if age_ms <= seconds * 1000:
                recent[seconds] += 1
        ago = last_second - added_ms // 1000
        if 0 <= ago < PER_SECOND:
            per_second[PER_SECOND - 1 - ago] += 1
    hints: list[str] = []
    if matched == 0:
        hints = (explainer or Explainer(event_filter)).hints(time_range)
    return {
        "events": matched,
        "skipped": skipped,
        "by_event_type": dict(counts[Dimension.EVENT_TYPE].most_common()),
        "by_backend": _top(counts[Dimension.BACKEND]),
        "by_model": _top(counts[Dimension.MODEL]),
        "by_node": _top(counts[Dimension.NODE]),
        "by_instance": _top(counts[Dimension.INSTANCE]),
        "top_fallback_reasons": _top(fallback_reasons),
        "rate_per_second": {f"{seconds}s": round(recent[seconds] / seconds, 2) for seconds in RATE_WINDOWS},
        "per_second": {"last": last_second, "counts": per_second},
        "hints": hints,
    }


class ResultCache:
    """Results per query, recomputed at most every CACHE_SECONDS; pages asking the same at once
    share one computation."""

    def __init__(self) -> None:
        self._cache: dict[Hashable, tuple[float, Any]] = {}
        self._lock = asyncio.Lock()

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        async with self._lock:
            cached = self._cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
                result: T = cached[1]
                return result
            result = await compute()
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), result)
            return result


async def stats(
    client: redis.asyncio.Redis,
    stream: str,
    event_filter: EventFilter,
    time_range: TimeRange,
    last_id: str | None = None,
) -> dict[str, Any]:
    """The counts over the range's window of the stream, up to `last_id` (the end when None)."""
    window = await read_window(client, stream, time_range, last_id)
    now_ms = time_range.until_ms or int(time.time() * 1000)
    result = await asyncio.to_thread(aggregate, window.entries, event_filter, time_range, now_ms)
    result["window"] = window.summary()
    result["last_id"] = window.last_id
    return result
