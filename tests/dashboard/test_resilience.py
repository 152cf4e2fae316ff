"""Redis lost and back: the hub reconnects and resumes, clients see the state as it changes."""

from __future__ import annotations

import asyncio

import pytest
import redis
from dashboard.conftest import ServerFactory
from dashboard.dashboard_harness import reasons, write, ws_feed
from redis_servers import RedisServer
from websockets.exceptions import ConnectionClosed

from sollol_otel.settings import Settings
from sollol_otel.web.feeds import CLOSE_UNAVAILABLE


def _status(messages: list[dict[str, object]]) -> list[object]:
    return [m["redis"] for m in messages if m["type"] == "status"]


async def test_clients_see_redis_go_and_return_then_get_events_after_the_restart(
    start_dashboard: ServerFactory, private_redis: RedisServer, keys: tuple[str, str]
) -> None:
    server = start_dashboard(Settings.from_env().with_overrides(redis_url=private_redis.url))
    async with ws_feed(server, "batch=1") as client:
        await client.caught_up()
        await asyncio.to_thread(private_redis.stop)
        await client.until(lambda ms: _status(ms)[-1] == "down", timeout=10)
        await asyncio.to_thread(private_redis.start)
        await client.until(lambda ms: _status(ms)[-1] == "up", timeout=15)
        write(redis.Redis.from_url(private_redis.url), keys[0], 3)
        events = await client.events(3)
    assert reasons(events) == [f"sufficient_resources #{n}" for n in range(3)]


async def test_a_client_arriving_while_redis_is_down_is_told_to_come_back(
    start_dashboard: ServerFactory, private_redis: RedisServer, keys: tuple[str, str]
) -> None:
    private_redis.stop()
    server = start_dashboard(Settings.from_env().with_overrides(redis_url=private_redis.url))
    async with ws_feed(server, "batch=1") as client:
        with pytest.raises(ConnectionClosed) as closed:
            await client.until(lambda ms: False, timeout=15)
    assert _status(client.messages)[-1] == "down"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_UNAVAILABLE
