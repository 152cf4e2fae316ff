"""The live feeds against a real Redis: backlog then live, resume exactly once, filters, gaps."""

from __future__ import annotations

import asyncio

import pytest
import redis
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer, reasons, resume_query, sse_messages, write, ws_feed
from websockets.exceptions import ConnectionClosed

from sollol_otel.web.feeds import CLOSE_SLOW


async def test_ws_sends_the_newest_100_then_live_events(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 150)
    async with ws_feed(dashboard, "batch=1") as client:
        await client.caught_up()
        write(redis_client, keys[0], 5, start=150)
        events = await client.events(105)
    assert reasons(events) == [f"sufficient_resources #{n}" for n in range(50, 155)]


async def test_ws_without_batch_sends_one_seed_shaped_object_per_frame(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    [entry_id] = write(redis_client, keys[0], 1)
    async with ws_feed(dashboard) as client:
        [event] = await client.events(1)
    assert event["id"] == entry_id
    assert event["message"] == "🎯 llama3.2:3b → ollama | sufficient_resources #0"
    assert {"event_type", "timestamp", "instance_id", "model", "backend", "reason", "full_event"} <= set(
        event
    )
    assert client.messages[0]["type"] == "connected"


async def test_ws_resume_with_last_id_gets_every_later_event_exactly_once(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 10)
    async with ws_feed(dashboard, "batch=1") as client:
        seen = await client.events(10)
    write(redis_client, keys[0], 20, start=10)
    async with ws_feed(dashboard, f"batch=1&{resume_query(seen[-1])}") as client:
        await client.caught_up()
        write(redis_client, keys[0], 5, start=30)
        resumed = await client.events(25)
    assert reasons(resumed) == [f"sufficient_resources #{n}" for n in range(10, 35)]


async def test_backlog_and_live_overlap_while_writing_loses_and_repeats_nothing(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    async def writer() -> None:
        for batch in range(40):
            await asyncio.to_thread(write, redis_client, keys[0], 10, batch * 10)
            await asyncio.sleep(0.002)

    writing = asyncio.create_task(writer())
    await asyncio.sleep(0.02)
    async with ws_feed(dashboard, "batch=1&backlog=10000") as client:
        await writing
        events = await client.events(400)
    assert reasons(events) == [f"sufficient_resources #{n}" for n in range(400)]


async def test_ws_filters_apply_to_backlog_and_live(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 3, backend="rpc")
    write(redis_client, keys[0], 3, start=3)
    query = "batch=1&backend=rpc&event_type=route_decision,CACHE_HIT"
    async with ws_feed(dashboard, query) as client:
        await client.caught_up()
        write(redis_client, keys[0], 2, start=6, backend="rpc")
        write(redis_client, keys[0], 2, start=8, backend="rpc", event_type="FALLBACK_TRIGGERED")
        write(redis_client, keys[0], 1, start=10, backend="rpc", event_type="CACHE_HIT")
        events = await client.events(6)
    assert reasons(events) == [f"sufficient_resources #{n}" for n in (0, 1, 2, 6, 7, 10)]


async def test_sse_ids_are_stream_ids_and_last_event_id_resumes(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    ids = write(redis_client, keys[0], 6)
    first = await sse_messages(dashboard, until=lambda out: out[-1][1] == "caught_up")
    assert [i for i, name, _ in first if name == "routing_event"] == ids
    resumed = await sse_messages(
        dashboard, headers={"Last-Event-ID": ids[2]}, until=lambda out: out[-1][1] == "caught_up"
    )
    assert [i for i, name, _ in resumed if name == "routing_event"] == ids[3:]


async def test_sse_last_id_parameter_resumes_and_filters(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    ids = write(redis_client, keys[0], 4, model="a")
    write(redis_client, keys[0], 2, start=4, model="b")
    out = await sse_messages(
        dashboard, f"last_id={ids[1]}&model=a", until=lambda out: out[-1][1] == "caught_up"
    )
    assert [i for i, name, _ in out if name == "routing_event"] == ids[2:]


@pytest.mark.redis7
async def test_resume_from_a_trimmed_id_sends_a_gap_with_the_exact_count(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 5)
    async with ws_feed(dashboard, "batch=1") as client:
        seen = await client.events(5)
    write(redis_client, keys[0], 20, start=5)
    redis_client.xtrim(keys[0], maxlen=10, approximate=False)
    last = seen[-1]
    async with ws_feed(dashboard, f"batch=1&{resume_query(last)}") as client:
        messages = await client.caught_up()
    [gap] = [m for m in messages if m["type"] == "gap"]
    assert (gap["reason"], gap["missed"]) == ("trimmed", 10)
    assert reasons(messages) == [f"sufficient_resources #{n}" for n in range(15, 25)]


async def test_resume_from_a_trimmed_id_without_offset_says_the_count_is_unknown(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    ids = write(redis_client, keys[0], 20)
    redis_client.xtrim(keys[0], maxlen=5, approximate=False)
    out = await sse_messages(dashboard, f"last_id={ids[3]}", until=lambda out: out[-1][1] == "caught_up")
    [gap] = [data for _, name, data in out if name == "gap"]
    assert gap["missed"] is None
    assert "unknown number" in gap["message"]


async def test_slow_client_is_told_and_dropped_while_others_get_everything(
    start_dashboard: ServerFactory, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    server = start_dashboard(client_queue=2000, send_timeout=600)  # the queue, not the reaper, cuts it off
    async with ws_feed(server, "batch=1", max_queue=1) as slow, ws_feed(server, "batch=1") as fast:
        await slow.caught_up()
        await fast.caught_up()
        for start in range(0, 30_000, 500):
            await asyncio.to_thread(write, redis_client, keys[0], 500, start, reason="x" * 300)
            await fast.events(start + 500)
        events = await fast.events(30_000, timeout=30)
        assert len(events) == 30_000
        messages = await slow.until(lambda ms: any(m["type"] == "gap" for m in ms), timeout=30)
        with pytest.raises(ConnectionClosed) as closed:
            await slow.until(lambda ms: False)
    assert messages[-1]["reason"] == "slow_client"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_SLOW
