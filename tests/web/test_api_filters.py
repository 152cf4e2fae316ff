"""The filters, the same on every feed and endpoint, against Redis 6.2 and 7: what each one matches,
the time range, one event by id, and the reasons given when nothing matched."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import redis
from web.dashboard_harness import DashboardServer, sse_messages, write_at, ws_feed

TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER_TRACE = "11111111111111111111111111111111"

#: One event of each shape the filters look at, written two seconds apart; `name` is its `reason`.
EVENTS: list[dict[str, Any]] = [
    {
        "reason": "small",
        "model": "llama3.2:3b",
        "backend": "ollama",
        "instance_id": "alpha_1_aa",
        "trace_id": TRACE,
    },
    {
        "reason": "node",
        "event_type": "OLLAMA_NODE_SELECTED",
        "model": "llama3.2:3b",
        "node_url": "http://10.0.0.21:11434",
        "instance_id": "alpha_1_aa",
        "trace_id": TRACE,
    },
    {
        "reason": "ollama_error: Out of memory",
        "event_type": "FALLBACK_TRIGGERED",
        "model": "codellama:13b",
        "backend": "rpc",
        "from_backend": "ollama",
        "instance_id": "beta_2_bb",
        "trace_id": OTHER_TRACE,
    },
    {
        "reason": "round_robin",
        "event_type": "RPC_BACKEND_SELECTED",
        "model": None,
        "backend": "rpc",
        "backend_host": "10.0.0.31",
        "backend_port": 50052,
        "instance_id": "beta_2_bb",
    },
    {
        "reason": "big",
        "model": "Llama3.1:70B",
        "backend": "RPC",
        "instance_id": "gamma_3_cc",
        "message": "Custom Words",
    },
]
START_MS = (int(time.time()) - 600) * 1000


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).isoformat()


@pytest.fixture
def written(versioned_client: redis.Redis, keys: tuple[str, str]) -> list[str]:
    return [
        write_at(versioned_client, keys[0], START_MS + 2000 * n, event)[0] for n, event in enumerate(EVENTS)
    ]


def matched(server: DashboardServer, **params: Any) -> list[str]:
    response = httpx.get(f"{server.url}/api/routing_events", params=params)
    assert response.status_code == 200, response.text
    return [event["reason"] for event in response.json()["events"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"model": "llama"}, ["small", "node", "big"]),
        ({"model": "LLAMA3.1"}, ["big"]),
        ({"model": "llama3.2:3b"}, ["small", "node"]),
        ({"backend": "rpc"}, ["ollama_error: Out of memory", "round_robin"]),
        ({"instance": "beta"}, ["ollama_error: Out of memory", "round_robin"]),
        ({"node": "10.0.0.21"}, ["node"]),
        ({"node": "10.0.0.31:50052"}, ["round_robin"]),
        ({"trace_id": TRACE.upper()}, ["small", "node"]),
        (
            {"event_type": "fallback_triggered,RPC_BACKEND_SELECTED"},
            ["ollama_error: Out of memory", "round_robin"],
        ),
    ],
    ids=[
        "model-prefix",
        "model-any-case",
        "model-full",
        "backend",
        "instance",
        "node-url",
        "node-rpc",
        "trace",
        "types-comma",
    ],
)
def test_each_filter_matches_what_it_says(
    versioned_dashboard: DashboardServer, written: list[str], params: dict[str, str], expected: list[str]
) -> None:
    assert matched(versioned_dashboard, **params) == expected


def test_event_type_repeated_means_any_of(versioned_dashboard: DashboardServer, written: list[str]) -> None:
    response = httpx.get(
        f"{versioned_dashboard.url}/api/routing_events?event_type=OLLAMA_NODE_SELECTED&event_type=RPC_BACKEND_SELECTED"
    )
    assert [event["reason"] for event in response.json()["events"]] == ["node", "round_robin"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("CODELLAMA", ["ollama_error: Out of memory"]),  # model
        ("rpc", ["ollama_error: Out of memory", "round_robin", "big"]),  # backend, any case
        ("10.0.0.31", ["round_robin"]),  # node
        ("out of MEMORY", ["ollama_error: Out of memory"]),  # reason
        ("custom words", ["big"]),  # the writer's message
        ("coordinator", []),  # nothing
        ("gamma_3", ["big"]),  # instance
    ],
    ids=["model", "backend", "node", "reason", "message", "nothing", "instance"],
)
def test_q_searches_model_backend_node_reason_message_and_instance(
    versioned_dashboard: DashboardServer, written: list[str], q: str, expected: list[str]
) -> None:
    assert matched(versioned_dashboard, q=q) == expected


def test_q_finds_our_own_message_text(versioned_dashboard: DashboardServer, written: list[str]) -> None:
    assert matched(versioned_dashboard, q="3b → http") == ["node"]  # "📡 llama3.2:3b → http://10.0.0.21…"


def test_since_and_until_take_iso_times_and_cover_since_up_to_until(
    versioned_dashboard: DashboardServer, written: list[str]
) -> None:
    assert matched(versioned_dashboard, since=iso(START_MS + 2000), until=iso(START_MS + 6000)) == [
        "node",
        "ollama_error: Out of memory",
    ]


def test_since_takes_a_duration_back_from_now(
    versioned_dashboard: DashboardServer,
    versioned_client: redis.Redis,
    keys: tuple[str, str],
    written: list[str],
) -> None:
    write_at(versioned_client, keys[0], int(time.time() * 1000), {"reason": "now"})
    assert matched(versioned_dashboard, since="5m") == ["now"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "soon"}, "until"),
        ({"since": "1m", "until": "2m"}, "until"),
    ],
)
def test_a_bad_time_is_refused_with_its_name(
    versioned_dashboard: DashboardServer, params: dict[str, str], named: str
) -> None:
    for path in ("/api/routing_events", "/api/stats", "/api/timeline"):
        response = httpx.get(f"{versioned_dashboard.url}{path}", params=params)
        assert response.status_code == 400 and named in response.json()["error"], (path, response.text)


async def test_the_live_feed_applies_q_and_several_event_types(
    versioned_dashboard: DashboardServer, versioned_client: redis.Redis, keys: tuple[str, str]
) -> None:
    query = "batch=1&q=memory&event_type=FALLBACK_TRIGGERED&event_type=CACHE_HIT"
    async with ws_feed(versioned_dashboard, query) as client:
        await client.caught_up()
        now = int(time.time() * 1000)
        write_at(
            versioned_client, keys[0], now, *EVENTS, {"event_type": "CACHE_HIT", "reason": "memory cached"}
        )
        events = await client.events(2)
    assert [event["reason"] for event in events] == ["ollama_error: Out of memory", "memory cached"]


async def test_sse_applies_the_same_filters(versioned_dashboard: DashboardServer, written: list[str]) -> None:
    out = await sse_messages(
        versioned_dashboard, "node=10.0.0&model=llama", until=lambda out: out[-1][1] == "caught_up"
    )
    assert [data["reason"] for _, kind, data in out if kind == "routing_event"] == ["node"]


async def test_a_feeds_backlog_starts_at_since(
    versioned_dashboard: DashboardServer,
    versioned_client: redis.Redis,
    keys: tuple[str, str],
    written: list[str],
) -> None:
    write_at(versioned_client, keys[0], int(time.time() * 1000), {"reason": "recent"})
    async with ws_feed(versioned_dashboard, "batch=1&since=5m") as client:
        messages = await client.caught_up()
    assert [m["reason"] for m in messages if m["type"] == "routing_event"] == ["recent"]


def test_a_feed_refuses_until(versioned_dashboard: DashboardServer) -> None:
    response = httpx.get(f"{versioned_dashboard.url}/sse/routing_events", params={"until": "1m"})
    assert response.status_code == 400 and "until" in response.json()["error"]


def test_one_event_by_its_stream_id(versioned_dashboard: DashboardServer, written: list[str]) -> None:
    event = httpx.get(f"{versioned_dashboard.url}/api/routing_events/{written[2]}").json()
    assert (event["id"], event["reason"], event["full_event"]["from_backend"]) == (
        written[2],
        "ollama_error: Out of memory",
        "ollama",
    )


def test_an_event_no_longer_in_the_stream_is_a_404_that_says_why(
    versioned_dashboard: DashboardServer, written: list[str]
) -> None:
    response = httpx.get(f"{versioned_dashboard.url}/api/routing_events/{START_MS - 1}-0")
    assert response.status_code == 404 and "not in the stream" in response.json()["error"]


def test_stats_count_nodes_and_fallback_reasons_with_one_label_for_none(
    versioned_dashboard: DashboardServer, written: list[str]
) -> None:
    stats = httpx.get(f"{versioned_dashboard.url}/api/stats").json()
    assert stats["by_node"] == {"(none)": 3, "http://10.0.0.21:11434": 1, "10.0.0.31:50052": 1}
    assert stats["by_model"]["(none)"] == 1
    assert stats["top_fallback_reasons"] == {"ollama_error: Out of memory": 1}
    assert (stats["events"], stats["last_id"], stats["hints"]) == (5, written[-1], [])


def test_stats_apply_the_filters_and_the_time_range(
    versioned_dashboard: DashboardServer, written: list[str]
) -> None:
    params = {"q": "llama", "since": iso(START_MS + 3000)}
    stats = httpx.get(f"{versioned_dashboard.url}/api/stats", params=params).json()
    assert stats["by_event_type"] == {"FALLBACK_TRIGGERED": 1, "ROUTE_DECISION": 1}


def test_stats_up_to_a_stream_id_leave_later_events_to_the_feed(
    versioned_dashboard: DashboardServer, written: list[str]
) -> None:
    stats = httpx.get(f"{versioned_dashboard.url}/api/stats", params={"last_id": written[1]}).json()
    assert (stats["events"], stats["last_id"]) == (2, written[1])


@pytest.mark.parametrize(
    ("params", "hint"),
    [
        (
            {"event_type": "ROUTE_DESICION"},
            "no ROUTE_DESICION event was written (ROUTE_DESICION: not a type SOLLOL writes)",
        ),
        ({"event_type": "CACHE_HIT"}, "no CACHE_HIT event was written; types present: FALLBACK_TRIGGERED"),
        ({"model": "3b"}, "model '3b' is only part of codellama:13b, llama3.2:3b"),
        ({"model": "mistral"}, "no model name starts with 'mistral'; models present: (none), Llama3.1:70B"),
        ({"backend": "Ollama"}, "backend matches exactly, and 'Ollama' was written as ollama"),
        ({"instance": "_2_"}, "instance '_2_' is only part of beta_2_bb"),
        ({"node": "10.9"}, "no node contains '10.9'"),
        ({"q": "zebra"}, "contains 'zebra'"),
        ({"trace_id": "f" * 32}, f"no event of trace {'f' * 32} is in the window"),
        (
            {"model": "codellama", "instance": "alpha"},
            "matches events on its own, but no event matches all of them",
        ),
    ],
    ids=[
        "unknown-type",
        "type-not-written",
        "model-partial",
        "model-absent",
        "backend-case",
        "instance-partial",
        "node",
        "q",
        "trace",
        "combination",
    ],
)
def test_stats_say_why_a_filter_matched_nothing(
    versioned_dashboard: DashboardServer, written: list[str], params: dict[str, str], hint: str
) -> None:
    stats = httpx.get(f"{versioned_dashboard.url}/api/stats", params=params).json()
    assert stats["events"] == 0
    assert any(hint in text for text in stats["hints"]), stats["hints"]


def test_stats_of_an_empty_range_say_the_stream_holds_nothing_there(
    versioned_dashboard: DashboardServer, written: list[str]
) -> None:
    stats = httpx.get(f"{versioned_dashboard.url}/api/stats", params={"since": "1m", "model": "x"}).json()
    assert stats["hints"][0].startswith("the stream holds no events from ")
