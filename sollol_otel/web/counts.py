"""Counts over a time range from the stream (by event type, backend, model, node, instance), recent
rates, the top fallback reasons, and why a filter matched nothing; what an answer is asked, the
scan and the result cache the timeline and the history's answers share.

Time is Redis's: an entry's time is its stream id's milliseconds and "now" is Redis TIME, so a
reader's clock never moves a range, and entries whose ids lie after Redis's now (a writer that set
its own ids) are in no range and said beside it. The stream is read page by page
(StreamReader.pages_back) and each page counted in a worker thread, so memory stays bounded and
the live feeds never stall; past MAX_SCAN entries the answer says what it left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import redis.asyncio
from cachetools import TTLCache
from starlette.datastructures import QueryParams

from sollol_otel.events import MISSING, Dimension, EventType
from sollol_otel.filters import EPOCH, EventFilter, Explainer, TimeRange
from sollol_otel.redis.clock import id_ms
from sollol_otel.redis.entries import StreamEntry
from sollol_otel.redis.stream import StreamReader, next_id
from sollol_otel.web.backlog import range_bounds
from sollol_otel.web.params import TOP, event_filter, stream_id, time_range, top_param
from sollol_otel.wire import Skipped, as_text

#: Entries fetched per round trip.
PAGE = 5000
#: Most stream entries one answer reads; past it the answer says what it left out.
MAX_SCAN = 100_000
#: Most entries with ids after Redis's now counted one by one.
MAX_LATER = 10_000
#: Seconds a result is reused for the same query.
CACHE_SECONDS = 2.0
#: Most bytes of answers kept for reuse (an answer over 100,000 nodes is megabytes).
CACHE_BYTES = 32 * 1024 * 1024
#: Answers computed at once per process: a heavy query takes one slot, the others stay free.
RUNNING = 2
RATE_WINDOWS = (10, 60)
#: Seconds of per-second counts sent (up to now), for a page that keeps the rate live.
PER_SECOND = 60


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def at_ms(epoch_ms: int) -> datetime:
    """A moment from epoch milliseconds, exactly (a float of seconds can lose the last one)."""
    return EPOCH + timedelta(milliseconds=epoch_ms)


def bounded_range(time_range: TimeRange, now_ms: int, last_id: str | None) -> TimeRange:
    """The range cut where an answer ends: before Redis's now (entries of the current millisecond,
    and ids after it, are the live feed's), at `until`, and after `last_id`'s millisecond. Both
    sources count exactly this, so an answer is the same whichever gave it."""
    end_ms = now_ms
    if last_id is not None:
        end_ms = min(end_ms, id_ms(last_id) + 1)
    if time_range.until_ms is not None:
        end_ms = min(end_ms, time_range.until_ms)
    since = time_range.since
    if time_range.since_ms is not None and time_range.since_ms > end_ms:
        since = at_ms(end_ms)
    return TimeRange(since, at_ms(end_ms))


async def covered_to(client: redis.asyncio.Redis, stream: str, span: TimeRange) -> str:
    """The id an answer over `span` names as its end: the stream's newest entry before the range's
    end (`0-0` when it holds none). Every event counted is at or before it and every later one
    comes after it, so a page that counts the live feed from there counts nothing twice."""
    end_ms = span.until_ms or 0
    newest: Any = await client.xrevrange(stream, max=f"({end_ms}-0", min="-", count=1) if end_ms else []
    return as_text(newest[0][0]) if newest else "0-0"


@dataclass(frozen=True)
class Question:
    """What one answer is asked: the filter, the range, Redis's now, up to which id, and how many
    values of each dimension to name."""

    event_filter: EventFilter
    time_range: TimeRange
    now_ms: int
    last_id: str | None = None
    top: int = TOP

    async def bounded(self, client: redis.asyncio.Redis, stream: str) -> tuple[TimeRange, str]:
        """The range the answer covers, and the stream id it names as its end."""
        span = bounded_range(self.time_range, self.now_ms, self.last_id)
        return span, await covered_to(client, stream, span)


def question(params: QueryParams, now_ms: int) -> Question:
    """What a request asks: its filters, range (durations back from Redis's now), `last_id`, `top`;
    BadParameter names a bad one."""
    return Question(
        event_filter(params),
        time_range(params, at_ms(now_ms)),
        now_ms,
        stream_id(params, "last_id"),
        top_param(params),
    )


async def later_entries(client: redis.asyncio.Redis, stream: str, now_ms: int) -> list[str]:
    """What to say of entries whose ids lie after Redis's now (a writer that set its own ids): their
    time is unknown, so no range holds them."""
    later: Any = await client.xrange(stream, min=f"{now_ms + 1}-0", max="+", count=MAX_LATER + 1)
    if not later:
        return []
    count = f"more than {MAX_LATER}" if len(later) > MAX_LATER else str(len(later))
    return [
        f"{count} entries carry ids after Redis's clock ({iso(now_ms)}): their time is unknown, "
        "so they are in no range"
    ]


@dataclass
class Scan:
    """What one answer read of the stream, and what it had to leave out."""

    #: Everything up to this id, and nothing after it, was considered: a page counts live events after it.
    last_id: str
    entries: int = 0
    oldest_id: str | None = None
    #: False when MAX_SCAN stopped the reading before the range's start.
    complete: bool = True

    def take(self, page: list[StreamEntry]) -> list[StreamEntry]:
        """The part of a page (oldest first) the answer counts, within MAX_SCAN."""
        room = MAX_SCAN - self.entries
        if len(page) > room:
            page, self.complete = page[len(page) - room :], False
        if page:
            self.oldest_id = page[0].id
        self.entries += len(page)
        return page

    def bounds(self) -> list[str]:
        """Sentences saying how the answer is partial; none when it covers the whole range."""
        if self.complete or self.oldest_id is None:
            return []
        return [
            f"only the newest {self.entries} entries of the range were counted (from "
            f"{iso(id_ms(self.oldest_id))}); older ones in the range were not"
        ]


async def scan(
    client: redis.asyncio.Redis,
    stream: str,
    time_range: TimeRange,
    last_id: str,
    count: Callable[[list[StreamEntry]], None],
) -> Scan:
    """Feeds `count`, in a worker thread, each page of the range up to `last_id`, newest page first,
    at most MAX_SCAN entries in all."""
    done = Scan(last_id)
    since, before = range_bounds(time_range, next_id(last_id))
    pages = StreamReader(client, stream).pages_back(PAGE, since=since, before=before)
    async with contextlib.aclosing(pages):
        async for page in pages:
            kept = done.take(page)
            if kept:
                await asyncio.to_thread(count, kept)
            if not done.complete:
                break
    return done


def top_values(counter: Counter[str], top: int) -> tuple[dict[str, int], int | None]:
    """The `top` most frequent values (ties by name, so every process names the same ones), and how
    many events the rest hold, None when no value was left out."""
    named = heapq.nsmallest(top, counter.items(), key=lambda item: (-item[1], item[0]))
    if len(named) == len(counter):
        return dict(named), None
    return dict(named), counter.total() - sum(n for _, n in named)


@dataclass
class StatsCount:
    """The counts of one answer, added page by page in a worker thread."""

    event_filter: EventFilter
    now_ms: int
    counts: dict[Dimension, Counter[str]] = field(default_factory=lambda: {d: Counter() for d in Dimension})
    fallback_reasons: Counter[str] = field(default_factory=Counter)
    recent: dict[int, int] = field(default_factory=lambda: dict.fromkeys(RATE_WINDOWS, 0))
    per_second: list[int] = field(default_factory=lambda: [0] * PER_SECOND)
    matched: int = 0
    skipped: int = 0
    explainer: Explainer = field(init=False)

    def __post_init__(self) -> None:
        self.explainer = Explainer(self.event_filter)

    def __call__(self, entries: list[StreamEntry]) -> None:
        flt, explainer, last_second = self.event_filter, self.explainer, self.now_ms // 1000
        for entry in entries:
            event = entry.item
            if isinstance(event, Skipped):
                self.skipped += 1
                continue
            if not flt.is_empty:
                explainer.add(event)
            if not flt.matches(event):
                continue
            self.matched += 1
            for dimension, counter in self.counts.items():
                counter[event.value(dimension)] += 1
            if event.event_type == EventType.FALLBACK_TRIGGERED:
                self.fallback_reasons[event.text("reason") or MISSING] += 1
            added_ms = id_ms(entry.id)  # never after now: the range ends there
            for seconds in RATE_WINDOWS:
                if self.now_ms - added_ms <= seconds * 1000:
                    self.recent[seconds] += 1
            ago = last_second - added_ms // 1000
            if ago < PER_SECOND:
                self.per_second[PER_SECOND - 1 - ago] += 1

    def answer(self, time_range: TimeRange, top: int) -> dict[str, Any]:
        named: dict[str, Any] = {}
        other: dict[str, int] = {}
        for key, counter in (
            *((f"by_{dimension.value}", self.counts[dimension]) for dimension in Dimension),
            ("top_fallback_reasons", self.fallback_reasons),
        ):
            named[key], rest = top_values(counter, top)
            if rest is not None:
                other[key] = rest
        hints = self.explainer.hints(time_range) if self.matched == 0 else []
        return {
            "events": self.matched,
            "skipped": self.skipped,
            **named,
            "top": top,
            "bounded": bool(other),
            "other": other,
            "rate_per_second": {
                f"{seconds}s": round(self.recent[seconds] / seconds, 2) for seconds in RATE_WINDOWS
            },
            "per_second": {"last": self.now_ms // 1000, "counts": self.per_second},
            "hints": hints,
        }


def encode(answer: dict[str, Any]) -> bytes:
    """Strict JSON (orjson writes no NaN or Infinity), as the response body and the cached value."""
    return orjson.dumps(answer)


class ResultCache:
    """Answers per query, kept as the bytes sent for CACHE_SECONDS, CACHE_BYTES in all (not a count:
    one answer may be megabytes). Requests for the same query at once share one computation, and at
    most RUNNING different ones compute at a time, so one heavy query never queues everyone else's."""

    def __init__(self, max_bytes: int = CACHE_BYTES, running: int = RUNNING) -> None:
        self._done: TTLCache[Hashable, bytes] = TTLCache(max_bytes, CACHE_SECONDS, getsizeof=len)
        self._running: dict[Hashable, asyncio.Task[bytes]] = {}
        self._slots = asyncio.Semaphore(running)

    @property
    def size(self) -> int:
        """What the kept answers weigh now (expired ones included until the next write drops them)."""
        return int(self._done.currsize)

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
        cached = self._done.get(key)
        if cached is not None:
            return cached
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._compute(key, compute))
            self._running[key] = task
            task.add_done_callback(lambda _: self._running.pop(key, None))
        # shielded: a client that goes away does not cancel the answer others wait for
        return await asyncio.shield(task)

    async def _compute(self, key: Hashable, compute: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
        async with self._slots:
            body = encode(await compute())
        if len(body) <= self._done.maxsize:
            self._done[key] = body
        return body


async def stream_stats(client: redis.asyncio.Redis, stream: str, question: Question) -> dict[str, Any]:
    """The counts over the range from the stream alone."""
    span, answer_last_id = await question.bounded(client, stream)
    counted = StatsCount(question.event_filter, question.now_ms)
    done = await scan(client, stream, span, answer_last_id, counted)
    return {
        **counted.answer(question.time_range, question.top),
        "complete": done.complete,
        "window": {"entries": done.entries, "complete": done.complete},
        "gaps": [],
        "bounds": done.bounds() + await later_entries(client, stream, question.now_ms),
        "last_id": answer_last_id,
    }
