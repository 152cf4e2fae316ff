"""`GET /api/timeline`: how many events fell in each time bucket, split by one dimension.

Exact over what the stream holds: every matching event in the range is counted once, in the
bucket of the time Redis added it (its stream id), so the counts (with `other`) add up to the
events. A dimension with more than `top` values names the top ones over the whole range, and
counts the rest in each bucket's `other`. Buckets are aligned to multiples of their length since
the epoch, which lets the page add live events to the same buckets, and run without holes from
`since` to `until`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio
from starlette.requests import Request
from starlette.responses import Response

from sollol_otel.events import Dimension
from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.history.query import History
from sollol_otel.redis.client import CONNECTION_ERRORS
from sollol_otel.redis.clock import id_ms, redis_now_ms
from sollol_otel.redis.entries import StreamEntry
from sollol_otel.settings import duration_seconds
from sollol_otel.web.api import cache_key, error, unavailable
from sollol_otel.web.counts import Question, at_ms, iso, later_entries, question, scan, top_values
from sollol_otel.web.from_history import gap_bounds, open_history, stream_only_bound
from sollol_otel.web.params import BadParameter
from sollol_otel.web.state import DashboardState, state_of
from sollol_otel.wire import Skipped

#: Bucket lengths chosen when the request names none: the smallest giving at most TARGET_BUCKETS.
BUCKET_LADDER = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
TARGET_BUCKETS = 120
#: Most buckets one answer holds.
MAX_BUCKETS = 5000
#: Most named counts one answer may hold (buckets × top): what keeps its size bounded.
MAX_CELLS = 250_000


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


@dataclass
class TimelineCount:
    """(ms, value) of each matching entry, added page by page in a worker thread."""

    event_filter: EventFilter
    by: Dimension
    counted: list[tuple[int, str]] = field(default_factory=list)
    skipped: int = 0

    def __call__(self, entries: list[StreamEntry]) -> None:
        for entry in entries:
            event = entry.item
            if isinstance(event, Skipped):
                self.skipped += 1
            elif self.event_filter.matches(event):
                self.counted.append((id_ms(entry.id), event.value(self.by)))


@dataclass(frozen=True)
class Grid:
    """Buckets of `bucket` seconds from the one holding `start_ms` to the one holding `end_ms - 1`."""

    start_ms: int
    end_ms: int
    bucket: int

    @classmethod
    def plan(cls, start_ms: int, end_ms: int, bucket: int | None, top: int) -> Grid:
        """BadParameter when the bucket would make too many buckets, or too many counts with `top`."""
        bucket = bucket or auto_bucket(end_ms - start_ms)
        buckets = (end_ms - start_ms) // (bucket * 1000) + 1
        if buckets > MAX_BUCKETS:
            raise BadParameter(
                f"bucket={bucket}s makes {buckets} buckets over this range "
                f"(at most {MAX_BUCKETS}): use longer"
            )
        if buckets * top > MAX_CELLS:
            raise BadParameter(
                f"top={top} over {buckets} buckets could name {buckets * top} counts "
                f"(at most {MAX_CELLS}): use a smaller top or a longer bucket"
            )
        return cls(start_ms, end_ms, bucket)

    @property
    def size(self) -> int:
        return self.bucket * 1000

    @property
    def first(self) -> int:
        return self.start_ms // self.size * self.size

    def __len__(self) -> int:
        return (max(self.end_ms - 1, self.start_ms) // self.size * self.size - self.first) // self.size + 1

    def index(self, ms: int) -> int:
        return (ms - self.first) // self.size

    def answer(
        self, counts: list[Counter[str]], others: list[int], rest: int | None, by: Dimension, top: int
    ) -> dict[str, Any]:
        """The buckets, empty ones included, each naming the `top` values of the whole range; when
        values were left out, each bucket's `other` counts them (a field beside the names, so a
        value called "other" stays itself)."""
        buckets: list[dict[str, Any]] = []
        for i, named in enumerate(counts):
            buckets.append({"start": iso(self.first + i * self.size), "counts": dict(named.most_common())})
            if rest is not None:
                buckets[-1]["other"] = others[i]
        return {
            "bucket_seconds": self.bucket,
            "by": by.value,
            "since": iso(self.start_ms),
            "until": iso(self.end_ms),
            "events": sum(c.total() for c in counts) + sum(others),
            "top": top,
            "bounded": rest is not None,
            "other": rest,
            "buckets": buckets,
        }


async def stream_timeline(
    client: redis.asyncio.Redis, stream: str, question: Question, by: Dimension, bucket: int | None
) -> dict[str, Any]:
    """The answer from the stream alone."""
    bounded, answer_last_id = await question.bounded(client, stream)
    counted = TimelineCount(question.event_filter, by)
    done = await scan(client, stream, bounded, answer_last_id, counted)
    end_ms = bounded.until_ms or question.now_ms
    start_ms = bounded.since_ms if bounded.since_ms is not None and done.complete else None
    if start_ms is None:
        start_ms = id_ms(done.oldest_id) if done.oldest_id else end_ms - 1
    grid = Grid.plan(start_ms, end_ms, bucket, question.top)
    named, rest = top_values(Counter(value for _, value in counted.counted), question.top)
    counts = [Counter[str]() for _ in range(len(grid))]
    others = [0] * len(grid)
    for ms, value in counted.counted:
        if value in named:
            counts[grid.index(ms)][value] += 1
        else:
            others[grid.index(ms)] += 1
    return {
        **grid.answer(counts, others, rest, by, question.top),
        "skipped": counted.skipped,
        "complete": done.complete,
        "gaps": [],
        "bounds": done.bounds() + await stream_only_bound(client, stream, question.time_range),
        "last_id": answer_last_id,
    }


async def history_timeline(
    client: redis.asyncio.Redis,
    stream: str,
    history: History,
    question: Question,
    by: Dimension,
    bucket: int | None,
) -> dict[str, Any]:
    """The answer from the segments and the stream's newest entries."""
    bounded, answer_last_id = await question.bounded(client, stream)
    end_ms = bounded.until_ms or question.now_ms
    start_ms = bounded.since_ms
    if start_ms is None:
        start_ms = await history.start_ms() or end_ms - 1
    grid = Grid.plan(start_ms, end_ms, bucket, question.top)
    span = TimeRange(at_ms(start_ms), bounded.until)
    found = await history.timeline(
        question.event_filter, span, bucket_ms=grid.size, by=by.value, top=question.top
    )
    counts = [Counter[str]() for _ in range(len(grid))]
    others = [0] * len(grid)
    for row in found["buckets"]:
        counts[grid.index(int(row["start_ms"]))].update(row["counts"])
        others[grid.index(int(row["start_ms"]))] += int(row.get("other", 0))
    return {
        **grid.answer(counts, others, sum(others) if found["bounded"] else None, by, question.top),
        "skipped": found["skipped"],
        "complete": True,
        "gaps": found["gaps"],
        "bounds": gap_bounds(found["gaps"]),
        "last_id": answer_last_id,
    }


async def compute(
    state: DashboardState, question: Question, by: Dimension, bucket: int | None
) -> dict[str, Any]:
    """From the history once there is one, else from the stream; BadParameter for too many buckets."""
    client = await state.client.get()
    stream = state.settings.stream
    history = await open_history(client, stream)
    if history is None:
        answer = await stream_timeline(client, stream, question, by, bucket)
    else:
        answer = await history_timeline(client, stream, history, question, by, bucket)
    answer["bounds"] += await later_entries(client, stream, question.now_ms)
    return {**answer, "filter": question.event_filter.label()}


async def timeline(request: Request) -> Response:
    """`GET /api/timeline?since=&until=&bucket=&by=&top=` plus the filters every endpoint takes, and
    `last_id` (count up to this stream id; the answer names the one it used)."""
    state = state_of(request)
    params = request.query_params
    try:
        now_ms = await redis_now_ms(await state.client.get())
        asked = question(params, now_ms)
        by = dimension(params.get("by"))
        bucket = bucket_seconds(params.get("bucket"))
        body = await state.cache.get(
            cache_key("timeline", request), lambda: compute(state, asked, by, bucket)
        )
    except BadParameter as exc:
        return error(400, str(exc))
    except CONNECTION_ERRORS as exc:
        return unavailable(exc, state.settings.redis_url)
    return Response(body, media_type="application/json")
