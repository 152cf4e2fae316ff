"""Redis lost and back: the hub reconnects and resumes, clients see the state as it changes."""

from __future__ import annotations

import asyncio
import signal

import pytest
import redis
from redis_servers import RedisServer
from server_process import server_process
from sollol_events import sollol_event, write_ahead
from web.conftest import ServerFactory
from web.dashboard_harness import WsClient, reasons, write, ws_feed
from websockets.asyncio.client import connect
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


def _reset_gaps(messages: list[dict[str, object]]) -> list[dict[str, object]]:
    return [m for m in messages if m["type"] == "gap" and m["reason"] == "reset"]


async def test_a_deleted_stream_written_again_with_lower_ids_keeps_reaching_the_feed(
    start_dashboard: ServerFactory, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write_ahead(redis_client, keys[0], sollol_event(reason="an hour ahead"))
    server = start_dashboard()
    async with ws_feed(server, "batch=1") as client:
        await client.caught_up()
        redis_client.delete(keys[0])
        write(redis_client, keys[0], 3)  # ids an hour below the one the hub read last
        await client.until(lambda ms: len(reasons(ms)) == 4, timeout=15)
        write(redis_client, keys[0], 1, start=3)
        events = await client.events(5, timeout=15)
    assert reasons(events) == ["an hour ahead", *(f"sufficient_resources #{n}" for n in range(4))]
    assert len(_reset_gaps(client.messages)) == 1


async def test_a_redis_restarted_empty_whose_new_ids_lie_below_ours_keeps_reaching_the_feed(
    private_redis: RedisServer, keys: tuple[str, str]
) -> None:
    admin = redis.Redis.from_url(private_redis.url)
    write_ahead(admin, keys[0], sollol_event(reason="an hour ahead"))
    with server_process("dashboard", env={"SOLLOL_REDIS_URL": private_redis.url}) as dashboard:
        async with connect(f"ws://127.0.0.1:{dashboard.port}/ws/routing_events?batch=1") as connection:
            client = WsClient(connection)
            await client.caught_up()
            dashboard.process.send_signal(signal.SIGSTOP)  # the new entries are there before the hub is back
            await asyncio.to_thread(private_redis.restart)  # empty: no persistence
            write(admin, keys[0], 3)
            dashboard.process.send_signal(signal.SIGCONT)
            events = await client.events(4, timeout=30)
    assert reasons(events) == ["an hour ahead", *(f"sufficient_resources #{n}" for n in range(3))]
    assert len(_reset_gaps(client.messages)) == 1
    admin.close()
