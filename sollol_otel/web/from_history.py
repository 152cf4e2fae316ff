"""Answers over any range: from the history (Parquet segments plus the stream's newest entries) once an
indexer has committed some, else from the stream alone, saying so when that leaves events out.

Both sources are asked the same range, ending before Redis's current millisecond, and an answer
names as `last_id` the stream's newest entry before that end (counts.Question.bounded), so a page
that counts live events after it counts none twice, whichever worker or source answered. An answer
says where its parts came from only when that matters: a gap in the history, or a stream that no
longer holds the whole range.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis.asyncio
from cachetools import TTLCache

from sollol_otel.events import Dimension
from sollol_otel.filters import MAX_DISTINCT, EventFilter, Explainer, TimeRange
from sollol_otel.history.query import History
from sollol_otel.redis.clock import id_ms
from sollol_otel.redis.entries import Gap, StreamEntry
from sollol_otel.redis.stream import next_id
from sollol_otel.web.backlog import Recent, recent
from sollol_otel.web.counts import (
    PER_SECOND,
    RATE_WINDOWS,
    Question,
    at_ms,
    iso,
    later_entries,
    stream_stats,
)
from sollol_otel.web.messages import batch_messages

#: The keys of a stats answer that name values, each with the rest's events in `other`.
NAMED = (*(f"by_{dimension.value}" for dimension in Dimension), "top_fallback_reasons")


#: Seconds an opened history is reused: its DuckDB connection and decoded stream tail outlive one
#: answer (a fresh one costs 20-30 ms), while a folder the lease moves to is found within this time.
REOPEN_SECONDS = 60.0
_opened: TTLCache[tuple[redis.asyncio.Redis, str], History] = TTLCache(64, REOPEN_SECONDS)


async def open_history(client: redis.asyncio.Redis, stream: str) -> History | None:
    """The stream's history; None before an indexer has committed any."""
    history = _opened.get((client, stream))
    if history is None:
        history = await History.open(client, stream)
        if history is not None:
            _opened[(client, stream)] = history
    return history


def gap_bounds(gaps: Iterable[dict[str, Any]]) -> list[str]:
    """The history's gaps in range, each said as a reader says a gap, with when it happened."""
    return [
        f"{iso(gap['at_ms'])}: "
        + Gap(gap["after_id"], gap["first_id"], gap["missed"], bool(gap.get("reset"))).explain()
        for gap in gaps
    ]


def flat(answer: dict[str, Any]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """History's `{"counts", "other", "bounded"}` per dimension as the API's names and `other`."""
    named = {key: dict(answer[key]["counts"]) for key in NAMED}
    other = {key: int(answer[key]["other"]) for key in NAMED if answer[key]["bounded"]}
    return named, other


async def history_hints(
    history: History, event_filter: EventFilter, time_range: TimeRange, shown: TimeRange, now_ms: int
) -> list[str]:
    """Why nothing matched, judged as the stream reader judges it: each part of the filter against
    the values the range holds, `q` and `trace_id` by the events they match alone."""
    explainer = Explainer(event_filter)
    everything = await history.stats(EventFilter(), time_range, now_ms=now_ms, top=MAX_DISTINCT)
    explainer.events = int(everything["events"])
    for dimension in Dimension:
        explainer.values[dimension] = set(everything[f"by_{dimension.value}"]["counts"])
    if event_filter.q is not None:
        alone = await history.stats(EventFilter(q=event_filter.q), time_range, now_ms=now_ms, top=1)
        explainer.q_matches = int(alone["events"])
    if event_filter.trace_id is not None:
        alone = await history.stats(
            EventFilter(trace_id=event_filter.trace_id), time_range, now_ms=now_ms, top=1
        )
        explainer.trace_matches = int(alone["events"])
    return explainer.hints(shown)


async def recent_counts(
    history: History, event_filter: EventFilter, time_range: TimeRange, now_ms: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Rates over the last RATE_WINDOWS seconds and per-second counts for the last PER_SECOND, within
    the range, counted as the stream reader counts them (an event `s` seconds old or less is recent)."""

    def within(start_ms: int) -> TimeRange:
        since_ms = max(start_ms, time_range.since_ms or 0)
        return TimeRange(at_ms(min(since_ms, now_ms + 1)), time_range.until)

    rates = {}
    for seconds in RATE_WINDOWS:
        answer = await history.stats(event_filter, within(now_ms - seconds * 1000), now_ms=now_ms, top=1)
        rates[f"{seconds}s"] = round(int(answer["events"]) / seconds, 2)
    last_second = now_ms // 1000
    first_second = last_second - PER_SECOND + 1
    timeline = await history.timeline(
        event_filter, within(first_second * 1000), bucket_ms=1000, by=Dimension.EVENT_TYPE.value, top=1
    )
    per_second = [0] * PER_SECOND
    for bucket in timeline["buckets"]:
        index = int(bucket["start_ms"]) // 1000 - first_second
        if 0 <= index < PER_SECOND:
            per_second[index] += sum(bucket["counts"].values()) + int(bucket.get("other", 0))
    return rates, {"last": last_second, "counts": per_second}


async def history_stats(
    client: redis.asyncio.Redis, stream: str, history: History, question: Question
) -> dict[str, Any]:
    """The counts over the range, exactly, from the segments and the stream's newest entries."""
    span, answer_last_id = await question.bounded(client, stream)
    flt, now_ms = question.event_filter, question.now_ms
    answer = await history.stats(flt, span, now_ms=now_ms, top=question.top)
    named, other = flat(answer)
    rates, per_second = await recent_counts(history, flt, span, now_ms)
    hints: list[str] = []
    if answer["events"] == 0:
        hints = await history_hints(history, flt, span, question.time_range, now_ms)
    return {
        "events": answer["events"],
        "skipped": answer["skipped"],
        **named,
        "top": question.top,
        "bounded": bool(other),
        "other": other,
        "rate_per_second": rates,
        "per_second": per_second,
        "hints": hints,
        "complete": True,
        "window": {"entries": answer["events"] + answer["skipped"], "complete": True},
        "gaps": answer["gaps"],
        "bounds": gap_bounds(answer["gaps"]) + await later_entries(client, stream, now_ms),
        "last_id": answer_last_id,
    }


async def stream_only_bound(client: redis.asyncio.Redis, stream: str, time_range: TimeRange) -> list[str]:
    """Without a history, what the stream no longer holds of the range, when it lost some."""
    try:
        info: dict[str, Any] = await client.xinfo_stream(stream)
    except redis.ResponseError:  # nothing written yet: nothing lost either
        return []
    first = info.get("first-entry")
    added = info.get("entries-added")
    trimmed = None if added is None else int(added) - int(info["length"])
    if not first or trimmed == 0:
        return []
    first_ms = id_ms(first[0])
    if time_range.since_ms is not None and time_range.since_ms >= first_ms:
        return []
    lost = (
        "any older events trimmed from it" if trimmed is None else f"the {trimmed} events trimmed before it"
    )
    return [
        f"no history yet (no indexer has committed one): counted what the stream holds, from "
        f"{iso(first_ms)}; {lost} are not in this answer"
    ]


async def stats(client: redis.asyncio.Redis, stream: str, question: Question) -> dict[str, Any]:
    """The counts over the range, from the history once there is one, else from the stream."""
    history = await open_history(client, stream)
    if history is not None:
        return await history_stats(client, stream, history, question)
    answer = await stream_stats(client, stream, question)
    answer["bounds"] += await stream_only_bound(client, stream, question.time_range)
    return answer


async def events_page(
    client: redis.asyncio.Redis,
    stream: str,
    event_filter: EventFilter,
    limit: int,
    before: str | None,
    time_range: TimeRange,
) -> Recent:
    """The newest matching events before `before`, oldest first: from the stream, and once paging
    reaches the stream's start, on into the history (continuing before the oldest event the stream
    gave, so none comes twice or goes missing at the seam)."""
    found = await recent(client, stream, event_filter, limit, before, time_range)
    if found.next_before is not None or len(found.messages) >= limit:
        return found
    history = await open_history(client, stream)
    if history is None:
        return found
    need = limit - len(found.messages)
    edge = found.messages[0].id if found.messages else before
    entries = await history.page(event_filter, time_range, before=edge, limit=need)
    older = [message for message, _ in batch_messages(list(reversed(entries)), None)]
    return Recent(older + found.messages, found.position, entries[-1].id if len(entries) == need else None)


async def one_event(client: redis.asyncio.Redis, stream: str, entry_id: str) -> StreamEntry | None:
    """The entry with this id, from the history when the stream no longer holds it."""
    history = await open_history(client, stream)
    if history is None:
        return None
    found = await history.page(EventFilter(), TimeRange(), before=next_id(entry_id), limit=1)
    return found[0] if found and found[0].id == entry_id else None
