"""Sentinel: the writer and every reader find the master themselves and follow a failover.

A real master, replica and three sentinels (Debian's redis-server 7.0); the master is killed
mid-stream. `redis+sentinel://:password@host:port,…/<service>` is the only address anyone is given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import redis
from cli.tail_cli import Running
from scale.deployments import SLOW, SentinelDeployment, requires_debian_redis
from scale.parts import (
    Receiver,
    each_once,
    feed_reasons,
    reasons,
    record,
    stream_reasons,
    tail_reasons,
)
from waiting import eventually
from web.dashboard_harness import DashboardServer, ws_feed

import sollol_otel

pytestmark = requires_debian_redis


async def test_every_event_recorded_after_the_promotion_lands_once_for_writer_receiver_tail_and_dashboard(
    sentinel: SentinelDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    command: Callable[..., Running],
    dashboard: Callable[[str], DashboardServer],
    receiver: Callable[[str], Receiver],
) -> None:
    logger = recording(redis_url=sentinel.url)
    tail = command(sentinel.url, "tail", "-o", "json", "--reconnect-timeout", str(SLOW))
    await asyncio.to_thread(tail.wait_for, lambda: tail.stderr_has("following"))
    otlp = await asyncio.to_thread(receiver, sentinel.url)
    async with ws_feed(dashboard(sentinel.url), "batch=1") as feed:
        await feed.caught_up()
        record(logger, range(10))
        assert await asyncio.to_thread(sollol_otel.force_flush, 10)

        await asyncio.to_thread(sentinel.master.stop)  # SIGKILL, mid-stream
        await asyncio.to_thread(sentinel.wait_for_promotion)
        record(logger, range(10, 20))
        await asyncio.to_thread(otlp.send, range(20, 30))
        assert await asyncio.to_thread(sollol_otel.force_flush, SLOW)

        after = reasons(range(10, 30))
        messages = await feed.until(lambda ms: set(after) <= set(feed_reasons(ms)), timeout=SLOW)
    await asyncio.to_thread(tail.wait_for, lambda: set(after) <= set(tail_reasons(tail)), SLOW)
    assert each_once(stream_reasons(sentinel.replica_client(), names[0]), after)
    assert each_once(feed_reasons(messages), after)
    assert each_once(tail_reasons(tail), after)
    assert not tail.stderr_has(sentinel.PASSWORD)


async def test_a_reader_reports_the_gap_when_the_promoted_replica_lacked_the_newest_events(
    sentinel: SentinelDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    command: Callable[..., Running],
) -> None:
    logger = recording(redis_url=sentinel.url)
    tail = command(sentinel.url, "tail", "-o", "json", "--reconnect-timeout", str(SLOW))
    await asyncio.to_thread(tail.wait_for, lambda: tail.stderr_has("following"))
    record(logger, range(5))
    assert await asyncio.to_thread(sollol_otel.force_flush, 10)

    sentinel.link.cut()  # a partition: what follows reaches the master alone
    record(logger, range(5, 10))
    assert await asyncio.to_thread(sollol_otel.force_flush, 10)
    await asyncio.to_thread(tail.wait_for, lambda: len(tail.stdout) == 10)
    sentinel.master.stop()
    await asyncio.to_thread(sentinel.wait_for_promotion)
    record(logger, range(10, 15))
    assert await asyncio.to_thread(sollol_otel.force_flush, SLOW)

    await asyncio.to_thread(tail.wait_for, lambda: len(tail.stdout) == 15, SLOW)
    assert tail.stderr_has("the stream was replaced"), tail.stderr
    assert each_once(tail_reasons(tail), reasons(range(15)))  # 5-9 read from the old master, nothing twice
    assert stream_reasons(sentinel.replica_client(), names[0]) == reasons([*range(5), *range(10, 15)])


async def test_rediss_sentinel_follows_a_failover_over_tls(
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    command: Callable[..., Running],
) -> None:
    with contextlib.closing(SentinelDeployment(tls=True)) as sentinel:
        logger = recording(redis_url=sentinel.url)
        tail = command(sentinel.url, "tail", "-o", "json", "--reconnect-timeout", str(SLOW))
        await asyncio.to_thread(tail.wait_for, lambda: tail.stderr_has("following"))
        record(logger, range(5))
        assert await asyncio.to_thread(sollol_otel.force_flush, 10)
        await asyncio.to_thread(sentinel.master.stop)
        await asyncio.to_thread(sentinel.wait_for_promotion)
        record(logger, range(5, 10))
        assert await asyncio.to_thread(sollol_otel.force_flush, SLOW)
        await asyncio.to_thread(tail.wait_for, lambda: len(tail.stdout) == 10, SLOW)
        assert each_once(tail_reasons(tail), reasons(range(10)))
        assert stream_reasons(sentinel.replica_client(), names[0]) == reasons(range(10))


def test_a_writer_sent_to_the_demoted_master_by_a_stale_sentinel_finds_the_new_one_within_seconds(
    sentinel: SentinelDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
) -> None:
    stale_port, _ = sentinel.add_sentinel()
    hosts = ",".join(f"127.0.0.1:{port}" for port in [stale_port, *sentinel.sentinel_ports[:-1]])
    url = f"redis+sentinel://:{sentinel.PASSWORD}@{hosts}/{sentinel.SERVICE}"  # the stale one asked first
    logger = recording(redis_url=url)
    record(logger, range(5))
    assert sollol_otel.force_flush(10)
    sentinel.sentinel().sentinel_failover(sentinel.SERVICE)
    sentinel.wait_for_promotion()
    old_master = redis.Redis(port=sentinel.master.port, password=sentinel.PASSWORD)
    eventually(lambda: old_master.info("replication")["role"] == "slave", timeout=SLOW, what="the demotion")
    # A sentinel restarted from an old configuration: it names the old master, a replica now,
    # until the others' announcements correct it (seconds). A writer reconnecting meanwhile
    # reaches the replica and is answered READONLY.
    stale = redis.Redis(port=stale_port, decode_responses=True)
    stale.sentinel_remove(sentinel.SERVICE)
    stale.sentinel_monitor(sentinel.SERVICE, "127.0.0.1", sentinel.master.port, 2)
    stale.sentinel_set(sentinel.SERVICE, "auth-pass", sentinel.PASSWORD)
    record(logger, range(5, 10))
    assert sollol_otel.force_flush(15)
    assert stream_reasons(sentinel.replica_client(), names[0]) == reasons(range(10))
    stats = sollol_otel.bridge_stats()
    assert (stats.state, stats.exported, stats.dropped) == ("ok", 10, 0)
    old_master.close()
    stale.close()
