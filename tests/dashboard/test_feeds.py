"""The live feeds against a real Redis: backlog then live, resume exactly once, filters, gaps."""

from __future__ import annotations

import asyncio

import redis
from dashboard.dashboard_harness import DashboardServer, reasons, sse_messages, write, ws_feed

from sollol_otel.server.feeds import CLOSE_SLOW


async def test_ws_sends_the_newest_100_then_live_events(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 150)
    async with ws_feed(dashboard, "batch=1") as client:
        await client.caught_up()
        write(redis_client, keys[0], 5, start=150)
        events = await client.events(105)
    assert reasons(events) == [f"sufficient_resources #{n}" for n in range(50, 155)]
