"""Counts over the retained window (by event type, backend, model, instance) and recent rates.

Computed from the stream itself, so every dashboard process agrees; decoding runs in a
worker thread so a large window never stalls the live feeds, and results are cached briefly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

from sollol_otel.events import RoutingEvent
from sollol_otel.filters import EventFilter
from sollol_otel.redis.client import LazyClient
from sollol_otel.redis.stream import StreamEntry, StreamReader, stream_key

#: Entries fetched per round trip.
PAGE = 5000
#: Most entries counted; a stream kept longer than this is counted from its newest end.
MAX_WINDOW = 100_000
#: Distinct models or instances listed (both come from clients, so their number is unbounded).
TOP = 50
#: Seconds a result is reused for the same filter.
CACHE_SECONDS = 2.0
RATE_WINDOWS = (10, 60)


def _top(counter: Counter[str]) -> dict[str, int]:
    return dict(counter.most_common(TOP))


def aggregate(entries: list[StreamEntry], event_filter: EventFilter, now_ms: int) -> dict[str, Any]:
    """The counts for decoded entries; pure, so it can run in a thread."""
    by_type: Counter[str] = Counter()
    by_backend: Counter[str] = Counter()
    by_model: Counter[str] = Counter()
    by_instance: Counter[str] = Counter()
    recent = dict.fromkeys(RATE_WINDOWS, 0)
    skipped = matched = 0
    for entry in entries:
        event = entry.item
        if not isinstance(event, RoutingEvent):
            skipped += 1
            continue
        if not event_filter.matches(event):
            continue
        matched += 1
        by_type[event.event_type] += 1
        by_backend[event.backend or "none"] += 1
        by_model[event.model or "none"] += 1
        by_instance[event.instance_id or "unknown"] += 1
        age_ms = now_ms - stream_key(entry.id)[0]
        for seconds in RATE_WINDOWS:
            if age_ms <= seconds * 1000:
                recent[seconds] += 1
    return {
        "events": matched,
        "skipped": skipped,
        "by_event_type": dict(by_type.most_common()),
        "by_backend": _top(by_backend),
        "by_model": _top(by_model),
        "by_instance": _top(by_instance),
        "rate_per_second": {f"{seconds}s": round(recent[seconds] / seconds, 2) for seconds in RATE_WINDOWS},
    }


class CountsCache:
    """Counts per filter, recomputed at most every CACHE_SECONDS."""

    def __init__(self, client: LazyClient, stream: str) -> None:
        self._client = client
        self._stream = stream
        self._cache: dict[EventFilter, tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def get(self, event_filter: EventFilter) -> dict[str, Any]:
        async with self._lock:  # concurrent pages share one computation
            cached = self._cache.get(event_filter)
            if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
                return cached[1]
            result = await self._compute(event_filter)
            if len(self._cache) > 100:
                self._cache.clear()
            self._cache[event_filter] = (time.monotonic(), result)
            return result

    async def _compute(self, event_filter: EventFilter) -> dict[str, Any]:
        entries: list[StreamEntry] = []
        first_id = last_id = None
        pages = StreamReader(await self._client.get(), self._stream).pages_back(PAGE)
        async with contextlib.aclosing(pages):
            async for page in pages:
                entries.extend(page)
                first_id, last_id = page[0].id, last_id or page[-1].id
                if len(entries) >= MAX_WINDOW:
                    break
        now_ms = int(time.time() * 1000)
        result = await asyncio.to_thread(aggregate, entries, event_filter, now_ms)
        result["window"] = {"entries": len(entries), "first_id": first_id, "last_id": last_id}
        return result
