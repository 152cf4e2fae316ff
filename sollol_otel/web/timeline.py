"""`GET /api/timeline`: how many events fell in each time bucket, split by one dimension.

Exact over what the stream holds: every matching event in the range is counted once, in the
bucket of the time Redis added it (its stream id), so the counts add up to the events. Buckets
are aligned to multiples of their length since the epoch, which lets the page add live events
to the same buckets, and run without holes from `since` to `until`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sollol_otel.events import Dimension, RoutingEvent
from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.redis.client import CONNECTION_ERRORS
from sollol_otel.settings import duration_seconds
from sollol_otel.web.api import cache_key, error, unavailable
from sollol_otel.web.counts import RawEntry, Window, entry_ms, read_window
from sollol_otel.web.params import BadParameter, event_filter, stream_id, time_range
from sollol_otel.web.state import DashboardState, state_of
from sollol_otel.wire import decode

#: Bucket lengths chosen when the request names none: the smallest giving at most TARGET_BUCKETS.
BUCKET_LADDER = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
TARGET_BUCKETS = 120
#: Most buckets one answer holds.
MAX_BUCKETS = 5000


def bucket_seconds(raw: str | None) -> int | None:
    """`10s`, `1m`, `1h` or a number of seconds, as whole seconds; None when not given."""
    text = (raw or "").strip()
    if not text:
        return None
    seconds = float(text) if text.isdigit() else duration_seconds(text)
    if seconds is None or seconds < 1 or seconds != int(seconds):
        raise BadParameter(f"bucket={text[:32]!r} is not a whole number of seconds (like 10s, 1m, 1h)")
    return int(seconds)


def dimension(raw: str | None) -> Dimension:
    text = (raw or "").strip() or Dimension.EVENT_TYPE.value
    try:
        return Dimension(text)
    except ValueError:
        names = " | ".join(d.value for d in Dimension)
        raise BadParameter(f"by={text[:32]!r} is not one of {names}") from None


def auto_bucket(span_ms: int) -> int:
    for seconds in BUCKET_LADDER:
        if span_ms <= seconds * 1000 * TARGET_BUCKETS:
            return seconds
    return BUCKET_LADDER[-1]


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def count(
    entries: list[RawEntry], event_filter: EventFilter, by: Dimension
) -> tuple[list[tuple[int, str]], int]:
    """(ms, value) of each matching entry, and how many entries were not events; pure, for a thread."""
    counted: list[tuple[int, str]] = []
    skipped = 0
    for raw_id, fields in entries:
        event = decode(fields)
        if not isinstance(event, RoutingEvent):
            skipped += 1
        elif event_filter.matches(event):
            counted.append((entry_ms(raw_id), event.value(by)))
    return counted, skipped


def bucketed(counted: list[tuple[int, str]], start_ms: int, end_ms: int, bucket: int) -> list[dict[str, Any]]:
    """Buckets from the one holding `start_ms` to the one holding `end_ms - 1`, empty ones included."""
    size = bucket * 1000
    first = start_ms // size * size
    last = max(end_ms - 1, start_ms) // size * size
    counts = [Counter[str]() for _ in range((last - first) // size + 1)]
    for ms, value in counted:
        counts[(ms - first) // size][value] += 1
    return [{"start": _iso(first + i * size), "counts": dict(c.most_common())} for i, c in enumerate(counts)]


async def compute(
    state: DashboardState,
    flt: EventFilter,
    span: TimeRange,
    by: Dimension,
    bucket: int | None,
    last_id: str | None,
) -> dict[str, Any]:
    """The answer; BadParameter when the bucket would make too many buckets."""
    window: Window = await read_window(await state.client.get(), state.settings.stream, span, last_id)
    now_ms = int(time.time() * 1000)
    newest = entry_ms(window.entries[0][0]) if window.entries else now_ms
    oldest = entry_ms(window.entries[-1][0]) if window.entries else now_ms
    start_ms = span.since_ms if span.since_ms is not None and window.complete else oldest
    end_ms = span.until_ms if span.until_ms is not None else max(now_ms, newest + 1)
    bucket = bucket or auto_bucket(end_ms - start_ms)
    buckets = (end_ms - start_ms) // (bucket * 1000) + 1
    if buckets > MAX_BUCKETS:
        raise BadParameter(
            f"bucket={bucket}s makes {buckets} buckets over this range (at most {MAX_BUCKETS}): use longer"
        )
    counted, skipped = await asyncio.to_thread(count, window.entries, flt, by)
    return {
        "bucket_seconds": bucket,
        "by": by.value,
        "since": _iso(start_ms),
        "until": _iso(end_ms),
        "events": len(counted),
        "skipped": skipped,
        "complete": window.complete,
        "last_id": window.last_id,
        "filter": flt.label(),
        "buckets": bucketed(counted, start_ms, end_ms, bucket),
    }


async def timeline(request: Request) -> Response:
    """`GET /api/timeline?since=&until=&bucket=&by=` plus the filters every endpoint takes, and
    `last_id` (count up to this stream id; the answer names the one it used)."""
    state = state_of(request)
    params = request.query_params
    try:
        flt = event_filter(params)
        span = time_range(params)
        by = dimension(params.get("by"))
        bucket = bucket_seconds(params.get("bucket"))
        last_id = stream_id(params, "last_id")
        result = await state.cache.get(
            cache_key("timeline", request), lambda: compute(state, flt, span, by, bucket, last_id)
        )
    except BadParameter as exc:
        return error(400, str(exc))
    except CONNECTION_ERRORS as exc:
        return unavailable(exc, state.settings.redis_url)
    return JSONResponse(result)
