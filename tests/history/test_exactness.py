"""Every answer over history equals decoding every event of the stream and applying the filter."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
import redis.asyncio
from history.harness import (
    answered_counts,
    full_scan,
    index_all,
    matching,
    scanned_counts,
    write_varied,
)

from sollol_otel.events import Dimension, RoutingEvent
from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.history import segments
from sollol_otel.history.query import History
from sollol_otel.redis.stream import stream_key

COUNT = 1200
START_MS = int(time.time() * 1000) - 2 * 3600 * 1000
STEP_MS = 250


def _at(offset_ms: int) -> datetime:
    return datetime.fromtimestamp((START_MS + offset_ms) / 1000, timezone.utc)


FILTERS = {
    "none": EventFilter(),
    "model prefix, any case": EventFilter.build(model="LLAMA3"),
    "backend exactly": EventFilter.build(backend="ollama"),
    "event types any of, any case": EventFilter.build(event_types=["route_decision,CACHE_HIT"]),
    "instance prefix": EventFilter.build(instance="host1_"),
    "node substring of a url": EventFilter.build(node="10.0.0.2"),
    "node substring of host:port": EventFilter.build(node=":50052"),
    "node key": EventFilter.build(node="GPU-BOX"),
    "q in a reason, non-ascii": EventFilter.build(q="überlast in i̇stanbul"),
    "q in a written message": EventFilter.build(q="custom message 4"),
    "q in a generated message": EventFilter.build(q="→ rpc"),
    "q in an instance": EventFilter.build(q="A1B2C3D2"),
    "trace id of lower case hex": EventFilter.build(trace_id=f"{30 // 3:032x}"),
    "trace id written in upper case": EventFilter.build(trace_id=f"{22:032x}"),
    "trace id not hex": EventFilter.build(trace_id="TRACE-26"),
    "all at once": EventFilter.build(model="llama", event_types=["FALLBACK_TRIGGERED"], q="i"),
}
RANGES = {
    "all": TimeRange(),
    "a middle part": TimeRange(_at(60_000), _at(200_000)),
}


@pytest.fixture
async def history(redis_url: str, redis_client: redis.Redis, stream: str, root: Path) -> History:
    """Half the events indexed into segments, the other half only in the stream."""
    write_varied(redis_client, stream, COUNT // 2, start_ms=START_MS, step_ms=STEP_MS)
    await index_all(redis_url, stream, root)
    write_varied(redis_client, stream, COUNT // 2, start_ms=START_MS + COUNT // 2 * STEP_MS, step_ms=STEP_MS)
    client = redis.asyncio.Redis.from_url(redis_url)
    opened = await History.open(client, stream, root)
    assert opened is not None
    return opened


@pytest.mark.parametrize("range_name", RANGES)
@pytest.mark.parametrize("filter_name", FILTERS)
async def test_stats_equal_a_full_scan_for_every_filter(
    history: History, redis_client: redis.Redis, stream: str, filter_name: str, range_name: str
) -> None:
    event_filter, time_range = FILTERS[filter_name], RANGES[range_name]
    entries = full_scan(redis_client, stream)
    stats = await history.stats(event_filter, time_range, now_ms=int(time.time() * 1000), top=1000)
    expected = scanned_counts(entries, event_filter, time_range)
    assert answered_counts(stats) == expected
    assert (
        stats["events"] == len(matching(entries, event_filter, time_range)) > 0
        or filter_name == "all at once"
    )
    skipped = [e for e in entries if not isinstance(e.item, RoutingEvent) and _in(e.id, time_range)]
    assert stats["skipped"] == len(skipped)


def _in(entry_id: str, time_range: TimeRange) -> bool:
    ms = stream_key(entry_id)[0]
    return (time_range.since_ms is None or ms >= time_range.since_ms) and (
        time_range.until_ms is None or ms < time_range.until_ms
    )


@pytest.mark.parametrize("filter_name", ["none", "model prefix, any case", "q in a reason, non-ascii"])
async def test_timeline_equals_a_full_scan_bucket_by_bucket(
    history: History, redis_client: redis.Redis, stream: str, filter_name: str
) -> None:
    event_filter = FILTERS[filter_name]
    entries = matching(full_scan(redis_client, stream), event_filter, TimeRange())
    answer = await history.timeline(event_filter, TimeRange(), bucket_ms=60_000, by="node", top=1000)
    expected: dict[int, dict[str, int]] = {}
    for entry in entries:
        assert isinstance(entry.item, RoutingEvent)
        start = stream_key(entry.id)[0] // 60_000 * 60_000
        value = entry.item.value(Dimension.NODE)
        expected.setdefault(start, {}).setdefault(value, 0)
        expected[start][value] += 1
    assert {b["start_ms"]: b["counts"] for b in answer["buckets"]} == expected
    assert not answer["bounded"]


async def test_events_and_pages_return_exactly_the_entries_a_full_scan_matches(
    history: History, redis_client: redis.Redis, stream: str
) -> None:
    event_filter = FILTERS["backend exactly"]
    expected = matching(full_scan(redis_client, stream), event_filter, TimeRange())
    assert [e async for e in history.events(event_filter, TimeRange())] == expected
    paged, before = [], None
    while True:
        page = await history.page(event_filter, TimeRange(), before=before, limit=37)
        if not page:
            break
        paged.extend(page)
        before = page[-1].id
    assert paged == list(reversed(expected))


async def test_a_real_value_named_other_stays_apart_from_the_count_of_the_rest(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    for index, node in enumerate(["other"] * 5 + ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"]):
        redis_client.xadd(
            stream, {"event": f'{{"event_type": "ROUTE_DECISION", "node": "{node}", "i": {index}}}'}
        )
    await index_all(redis_url, stream, root)
    history = await History.open(redis.asyncio.Redis.from_url(redis_url), stream, root)
    assert history is not None
    stats = await history.stats(EventFilter(), TimeRange(), now_ms=int(time.time() * 1000) + 1000, top=2)
    assert stats["by_node"] == {"counts": {"other": 5, "a": 4}, "other": 6, "bounded": True, "distinct": 5}


async def test_a_search_holding_the_separator_of_the_joined_texts_matches_one_text_only(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    joined_apart = {"event_type": "ROUTE_DECISION", "model": "x", "backend": "y"}
    one_value = {"event_type": "ROUTE_DECISION", "model": f"x{segments.SEPARATOR}y", "backend": "z"}
    for event in (joined_apart, one_value):
        redis_client.xadd(stream, {"event": json.dumps(event)})
    await index_all(redis_url, stream, root)
    history = await History.open(redis.asyncio.Redis.from_url(redis_url), stream, root)
    assert history is not None
    search = EventFilter.build(q=f"X{segments.SEPARATOR}Y")
    stats = await history.stats(search, TimeRange(), now_ms=int(time.time() * 1000) + 1000)
    assert stats["by_backend"]["counts"] == {"z": 1}
