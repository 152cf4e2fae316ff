"""Hostile stream entries: live clients, new clients, the APIs and health keep working, in strict JSON.

One entry nested 1,000 deep used to kill the hub (every page went dark while /healthz said ok),
and `1e99999` made the server send `Infinity`, so the page dropped whole frames.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from poison import POISON, strict_json, write_poison
from waiting import eventually
from web.dashboard_harness import DashboardServer, Message, sse_messages, write, ws_feed
from websockets.asyncio.client import connect

from sollol_otel.web import hub as hub_module


def caught_up(messages: list[Message]) -> bool:
    return any(m["type"] == "caught_up" for m in messages)


async def strict_ws_backlog(server: DashboardServer) -> list[Message]:
    """A new batching WebSocket client's messages until it caught up, each frame parsed as strict JSON."""
    messages: list[Message] = []
    async with connect(f"{server.ws_url}?batch=1", max_size=None) as connection, asyncio.timeout(15):
        while not caught_up(messages):
            messages.extend(strict_json(await connection.recv()))
    return messages


def reasons(messages: list[Message]) -> list[str]:
    return [
        m["reason"] for m in messages if m["type"] == "routing_event" and m["reason"] in ("before", "after")
    ]


async def test_live_clients_get_the_events_around_every_poison_entry(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    async with ws_feed(dashboard, "batch=1", max_size=None) as live:
        await live.caught_up()
        write(redis_client, keys[0], 1, reason="before")
        poison_ids = write_poison(redis_client, keys[0])
        write(redis_client, keys[0], 1, reason="after")
        await live.until(lambda ms: "after" in reasons(ms), timeout=15)
    skipped = {m["id"] for m in live.messages if m["type"] == "skipped"}
    assert reasons(live.messages) == ["before", "after"]
    assert {"deep_nesting", "over_the_entry_limit", "not_utf8", "no_event_field"} <= {
        name for name, entry_id in zip(POISON, poison_ids, strict=True) if entry_id in skipped
    }


async def test_every_frame_is_strict_json_for_new_clients_over_websocket_and_sse(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 1, reason="before")
    write_poison(redis_client, keys[0])
    write(redis_client, keys[0], 1, reason="after")
    websocket = await strict_ws_backlog(dashboard)
    sse = await sse_messages(dashboard, until=lambda ms: caught_up([m for _, _, m in ms]), timeout=15)
    for messages in (websocket, [m for _, _, m in sse]):
        events = [m for m in messages if m["type"] == "routing_event"]
        assert "before" in [e["reason"] for e in events] and "after" in [e["reason"] for e in events]
        assert json.loads(json.dumps(messages, allow_nan=False)) == messages
    by_reason = {e["full_event"].get("reason", "")[:6]: e for e in websocket if e["type"] == "routing_event"}
    assert len(by_reason["xxxxxx"]["reason"]) <= 4096  # the 900 kB field arrives cut


def test_the_apis_and_health_answer_in_strict_json(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 1, reason="before")
    write_poison(redis_client, keys[0])
    write(redis_client, keys[0], 1, reason="after")
    history = httpx.get(f"{dashboard.url}/api/routing_events", timeout=15)
    stats = httpx.get(f"{dashboard.url}/api/stats", timeout=15)
    assert (history.status_code, stats.status_code) == (200, 200)
    events = strict_json(history.text)["events"]
    assert (events[0]["reason"], events[-1]["reason"]) == ("before", "after")
    assert strict_json(stats.text)["skipped"] >= 4

    def counted_by_the_live_reader() -> bool:  # it reads on its own, maybe still behind the APIs
        health = httpx.get(f"{dashboard.url}/healthz")
        return health.status_code == 200 and strict_json(health.text)["reader"]["skipped"] >= 4

    eventually(counted_by_the_live_reader, what="/healthz, 200 and counting the skipped entries")


@pytest.fixture
def hub_fails_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The hub's fan-out raises on the first batch: a bug nobody foresaw, in the server's own thread."""
    failures: list[int] = []
    real = hub_module.batch_messages

    def failing(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append(1)
            raise RuntimeError("an unforeseen bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(hub_module, "batch_messages", failing)
    yield failures


async def test_a_hub_that_fails_is_restarted_and_clients_resume_without_losing_events(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str], hub_fails_once: list[int]
) -> None:
    async with ws_feed(dashboard, "batch=1") as client:
        await client.caught_up()
        write(redis_client, keys[0], 1, reason="lost with the hub?")
        await client.until(
            lambda ms: any(m["type"] == "status" and m["redis"] == "down" for m in ms), timeout=10
        )
    down = httpx.get(f"{dashboard.url}/healthz").json()
    last_id = client.messages[-1].get("id") or next(
        m["last_id"] for m in client.messages if m["type"] == "caught_up"
    )
    assert hub_fails_once == [1]
    eventually(lambda: httpx.get(f"{dashboard.url}/healthz").status_code == 200, what="the hub back")
    async with ws_feed(dashboard, f"batch=1&last_id={last_id}") as resumed:
        events = await resumed.events(1, timeout=10)
    assert [e["reason"] for e in events] == ["lost with the hub?"]
    assert down["reader"]["restarts"] == 1
