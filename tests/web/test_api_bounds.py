"""Answers that stay right and small at the edges: ids from the future, dimensions with more values
than an answer names, a count the scan cut short, and the memory results kept for reuse take."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import redis
from sollol_events import sollol_event
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer, write, write_at

from sollol_otel.web import counts
from sollol_otel.web.counts import ResultCache
from sollol_otel.wire import encode

#: 2200-01-01T00:00:00Z: an id a writer set itself, far past Redis's clock.
YEAR_2200_MS = 7_258_118_400_000


def get(server: DashboardServer, path: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{server.url}{path}", params=params, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("since", [None, "1h", "24h", "30d"])
def test_an_id_in_the_year_2200_leaves_every_timeline_range_answering(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str], since: str | None
) -> None:
    write(redis_client, keys[0], 4)
    write_at(redis_client, keys[0], YEAR_2200_MS, {})
    answer = get(dashboard, "/api/timeline", **({"since": since} if since else {}))
    assert answer["events"] == 4
    assert sum(sum(bucket["counts"].values()) for bucket in answer["buckets"]) == 4
    assert answer["until"] < "2027"  # the buckets end at Redis's now, not at the future id
    assert any("1 entries carry ids after Redis's clock" in said for said in answer["bounds"])


def test_an_id_in_the_year_2200_does_not_count_as_a_recent_event(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 5)
    write_at(redis_client, keys[0], YEAR_2200_MS, {}, {}, {})
    stats = get(dashboard, "/api/stats")
    assert (stats["events"], stats["rate_per_second"]["10s"]) == (5, 0.5)
    assert any("3 entries carry ids after Redis's clock" in said for said in stats["bounds"])
    assert sum(stats["per_second"]["counts"]) == 5


def nodes(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"event_type": "OLLAMA_NODE_SELECTED", "node_url": f"10.0.{n // 250}.{n % 250}:11434"}
        for n in range(start, start + count)
    ]


@pytest.fixture
def many_nodes(redis_client: redis.Redis, keys: tuple[str, str]) -> int:
    """60 nodes seen once each and one node really named "other", seen five times; a minute ago."""
    at = (int(time.time()) - 60) * 1000
    write_at(redis_client, keys[0], at, *nodes(60), *[{"node": "other"}] * 5)
    return at


def test_stats_name_the_top_nodes_and_count_the_rest_beside_them(
    dashboard: DashboardServer, many_nodes: int
) -> None:
    stats = get(dashboard, "/api/stats", top=10)
    assert len(stats["by_node"]) == 10 and stats["by_node"]["other"] == 5  # a real node called "other"
    assert (stats["bounded"], stats["top"]) == (True, 10)
    assert stats["other"]["by_node"] == 51
    assert "by_event_type" not in stats["other"]  # two types: both named
    assert sum(stats["by_node"].values()) + stats["other"]["by_node"] == stats["events"] == 65


def test_the_timeline_names_the_top_values_of_the_whole_range_and_counts_the_rest_per_bucket(
    dashboard: DashboardServer, many_nodes: int
) -> None:
    answer = get(dashboard, "/api/timeline", by="node", bucket="1m", top=10)
    assert (answer["bounded"], answer["other"]) == (True, 51)
    [bucket] = [b for b in answer["buckets"] if b["counts"]]
    assert bucket["counts"]["other"] == 5 and len(bucket["counts"]) == 10 and bucket["other"] == 51
    assert all("other" in b for b in answer["buckets"])


def test_an_unbounded_answer_says_so_and_its_buckets_carry_no_other(
    dashboard: DashboardServer, many_nodes: int
) -> None:
    answer = get(dashboard, "/api/timeline", by="event_type", bucket="1m")
    assert (answer["bounded"], answer["other"]) == (False, None)
    assert all(set(b) == {"start", "counts"} for b in answer["buckets"])


def test_a_timeline_by_node_over_100000_distinct_nodes_stays_small(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    for start in range(0, 100_000, 10_000):
        pipe = redis_client.pipeline(transaction=False)
        for event in nodes(10_000, start):
            pipe.xadd(keys[0], {"event": encode(sollol_event() | event)})
        pipe.execute()
    response = httpx.get(f"{dashboard.url}/api/timeline", params={"by": "node"}, timeout=120)
    answer = response.json()
    assert answer["events"] == 100_000 and len(answer["buckets"][-1]["counts"]) <= 50
    assert answer["other"] == 100_000 - 50
    assert len(response.content) < 100_000  # today: 2.9 MB


def test_without_a_history_a_count_the_scan_cut_short_says_what_it_left_out(
    start_dashboard: ServerFactory,
    redis_client: redis.Redis,
    keys: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(counts, "MAX_SCAN", 1000)
    write(redis_client, keys[0], 1500)
    dashboard = start_dashboard(history_indexer=False)
    stats = get(dashboard, "/api/stats")
    timeline = get(dashboard, "/api/timeline")
    assert (stats["events"], stats["complete"], timeline["events"], timeline["complete"]) == (
        1000,
        False,
        1000,
        False,
    )
    for answer in (stats, timeline):
        assert any("only the newest 1000 entries of the range were counted" in s for s in answer["bounds"])


def test_a_whole_count_says_no_bound(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 30)
    stats = get(dashboard, "/api/stats")
    assert (stats["events"], stats["complete"], stats["bounds"], stats["bounded"]) == (30, True, [], False)


async def test_answers_kept_for_reuse_stay_within_their_byte_budget() -> None:
    cache = ResultCache(max_bytes=1_000_000)

    async def big() -> dict[str, Any]:
        return {"counts": "x" * 300_000}

    for query in range(24):
        await cache.get(("timeline", query), big)
        assert cache.size <= 1_000_000
    assert len(await cache.get(("timeline", 23), big)) > 300_000


async def test_the_same_query_asked_at_once_is_computed_once() -> None:
    cache = ResultCache()
    computed = 0

    async def answer() -> dict[str, Any]:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.05)
        return {"events": computed}

    bodies = await asyncio.gather(*(cache.get("stats", answer) for _ in range(20)))
    assert computed == 1 and set(bodies) == {b'{"events":1}'}


async def test_a_heavy_query_does_not_hold_up_a_light_one() -> None:
    cache = ResultCache(running=2)
    release = asyncio.Event()

    async def heavy() -> dict[str, Any]:
        await release.wait()
        return {}

    slow = asyncio.create_task(cache.get("heavy", heavy))
    await asyncio.sleep(0)
    assert (
        await asyncio.wait_for(cache.get("light", lambda: asyncio.sleep(0, {"ok": True})), 5)
        == b'{"ok":true}'
    )
    release.set()
    await slow
