"""The JSON answers over history: Parquet segments written by the real indexer joined with the
stream's newest entries, each equal to a full scan of the same events, with every filter."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import redis
from history_events import INDEXED, STEP_MS, Seeded
from starlette.datastructures import QueryParams
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer

from sollol_otel.events import Dimension
from sollol_otel.filters import EventFilter
from sollol_otel.redis.stream import stream_key
from sollol_otel.web.params import event_filter

#: Each filter the API takes, as query parameters (the events hold every one of these values).
FILTERS: dict[str, dict[str, str]] = {
    "none": {},
    "model": {"model": "LLAMA3"},
    "backend": {"backend": "Ollama"},
    "event_type": {"event_type": "ROUTE_DECISION,fallback_triggered"},
    "node": {"node": "10.0.0.1"},
    "instance": {"instance": "host2_"},
    "q": {"q": "memory"},
    "trace_id": {"trace_id": f"{1:032X}"},
    "combined": {"q": "memory", "backend": "rpc", "model": "llama"},
}


def the_filter(params: dict[str, str]) -> EventFilter:
    return event_filter(QueryParams(params))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture
def server(start_dashboard: ServerFactory, seeded: Seeded) -> DashboardServer:
    return start_dashboard()


def get(server: DashboardServer, path: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{server.url}{path}", params=params, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_seed_puts_the_older_events_in_the_history_only(
    seeded: Seeded, redis_client: redis.Redis
) -> None:
    assert seeded.first_in_stream > seeded.entries[0][0]
    assert seeded.indexed_to == seeded.entries[INDEXED - 1][0]


@pytest.mark.parametrize("name", list(FILTERS))
def test_stats_over_history_equal_a_full_scan(server: DashboardServer, seeded: Seeded, name: str) -> None:
    params = FILTERS[name]
    stats = get(server, "/api/stats", top=1000, **params)
    expected = seeded.counts(the_filter(params))
    assert stats["events"] == sum(expected["event_type"].values()) > 0
    for dimension in Dimension:
        assert stats[f"by_{dimension.value}"] == dict(expected[dimension.value]), dimension
    assert stats["skipped"] == sum(1 for _, fields in seeded.entries if fields[b"event"] == b"not json")
    assert (stats["bounds"], stats["complete"], stats["bounded"]) == ([], True, False)


def test_stats_over_history_bound_sixty_nodes_to_the_top_fifty_exactly(
    server: DashboardServer, seeded: Seeded
) -> None:
    stats = get(server, "/api/stats")
    nodes = seeded.counts(EventFilter())["node"]
    top = sorted(nodes.items(), key=lambda item: (-item[1], item[0]))[:50]
    assert stats["by_node"] == dict(top) and stats["bounded"] is True
    assert stats["other"]["by_node"] == sum(nodes.values()) - sum(n for _, n in top)


def test_stats_since_and_until_cut_the_history_by_stream_id(server: DashboardServer, seeded: Seeded) -> None:
    first_ms = int(seeded.entries[0][0].partition("-")[0])
    since, until = first_ms + 500 * STEP_MS, first_ms + (INDEXED + 100) * STEP_MS
    stats = get(server, "/api/stats", since=iso(since), until=iso(until), model="llama")
    expected = seeded.matching(EventFilter(model="llama"), since, until)
    assert stats["events"] == len(expected)
    assert stats["by_model"] == dict(Counter(e.value(Dimension.MODEL) for _, e in expected))


@pytest.mark.parametrize("by", ["event_type", "node"])
@pytest.mark.parametrize("name", ["none", "q", "node"])
def test_the_timeline_over_history_equals_a_full_scan(
    server: DashboardServer, seeded: Seeded, by: str, name: str
) -> None:
    params = FILTERS[name]
    answer = get(server, "/api/timeline", since="3h", bucket="1m", by=by, top=1000, **params)
    expected: Counter[tuple[str, str]] = Counter()
    for entry_id, event in seeded.matching(the_filter(params)):
        ms = int(entry_id.partition("-")[0])
        expected[(iso(ms // 60_000 * 60_000), event.value(Dimension(by)))] += 1
    got = Counter({(b["start"], value): n for b in answer["buckets"] for value, n in b["counts"].items()})
    assert got == expected and answer["events"] == sum(expected.values())


def test_the_timeline_without_since_starts_where_the_history_starts(
    server: DashboardServer, seeded: Seeded
) -> None:
    answer = get(server, "/api/timeline", bucket="10m")
    first_ms = int(seeded.entries[0][0].partition("-")[0])
    assert answer["buckets"][0]["start"] == iso(first_ms // 600_000 * 600_000)
    assert answer["events"] == len(seeded.matching(EventFilter()))


@pytest.mark.parametrize("name", ["none", "model", "trace_id"])
def test_paging_back_goes_on_past_the_streams_start_into_the_history(
    server: DashboardServer, seeded: Seeded, name: str
) -> None:
    params = FILTERS[name]
    ids: list[str] = []
    before: str | None = None
    while True:
        page = get(
            server, "/api/routing_events", limit=250, **params, **({"before": before} if before else {})
        )
        ids[:0] = [event["id"] for event in page["events"]]
        before = page["next_before"]
        if before is None:
            break
    assert ids == [entry_id for entry_id, _ in seeded.matching(the_filter(params))]  # none twice, none missed


def test_one_event_the_stream_no_longer_holds_comes_from_the_history(
    server: DashboardServer, seeded: Seeded
) -> None:
    entry_id = seeded.entries[3][0]
    assert get(server, f"/api/routing_events/{entry_id}")["id"] == entry_id


def test_every_dashboard_worker_gives_the_same_answer(start_dashboard: ServerFactory, seeded: Seeded) -> None:
    first, second = start_dashboard(), start_dashboard()
    params = {"since": "3h", "until": iso(int(seeded.entries[-1][0].partition("-")[0]) + 1), "q": "memory"}
    answers = [get(server, "/api/stats", **params) for server in (first, second)]
    for answer in answers:
        del answer["per_second"], answer["rate_per_second"]
    assert answers[0] == answers[1]


@pytest.mark.redis7
def test_without_a_history_a_trimmed_stream_says_what_it_left_out(
    start_dashboard: ServerFactory, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    redis_client.xadd(keys[0], {"event": b"{}"})
    for _ in range(20):
        redis_client.xadd(keys[0], {"event": b'{"event_type": "ROUTE_DECISION"}'})
    redis_client.xtrim(keys[0], maxlen=10, approximate=False)
    stats = get(start_dashboard(history_indexer=False), "/api/stats")
    assert stats["events"] == 10
    assert any("no history yet" in said and "11 events trimmed" in said for said in stats["bounds"])


@pytest.mark.redis7
def test_events_trimmed_before_the_indexer_read_them_are_said_as_a_gap(
    start_dashboard: ServerFactory, seeded: Seeded, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    redis_client.xtrim(keys[0], maxlen=100, approximate=False)  # 200 unindexed events gone
    server = start_dashboard(history_indexer=False)
    for path in ("/api/stats", "/api/timeline"):
        answer = get(server, path, since="3h")
        [gap] = answer["gaps"]
        assert (gap["after_id"], gap["missed"]) == (seeded.indexed_to, 200)
        assert any("200 events after" in said and "were missed" in said for said in answer["bounds"])
    stats = get(server, "/api/stats", since="3h")
    lost = (stream_key(seeded.indexed_to), stream_key(stats["gaps"][0]["first_id"]))
    kept = [i for i, _ in seeded.matching(EventFilter()) if not lost[0] < stream_key(i) < lost[1]]
    assert stats["events"] == len(kept)
