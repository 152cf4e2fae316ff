"""Redis Cluster: a plain URL to any node works for the writer, tail, stats, dashboard and receiver.

Three real masters made with `redis-cli --cluster create`. Each test's stream lands in some
slot; the URL given names a node that does *not* hold it, so every part must follow MOVED.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import redis
from cli.tail_cli import Running, json_lines
from redis_servers import free_port
from scale.deployments import SLOW, ClusterDeployment, requires_debian_redis
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
from sollol_otel.access import answers

pytestmark = requires_debian_redis


def plain_url(cluster: ClusterDeployment, stream: str) -> str:
    return f"redis://127.0.0.1:{cluster.other_port(stream)}"


def owner(cluster: ClusterDeployment, stream: str) -> redis.Redis:
    return cluster.client(cluster.owner_port(stream))


def test_the_writer_follows_moved_from_a_node_that_does_not_hold_the_stream(
    cluster: ClusterDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
) -> None:
    record(recording(redis_url=plain_url(cluster, names[0])), range(20))
    assert sollol_otel.force_flush(10)
    assert stream_reasons(owner(cluster, names[0]), names[0]) == reasons(range(20))


def test_the_channel_reaches_subscribers_on_every_node(
    cluster: ClusterDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
) -> None:
    subscribers = [cluster.client(node.port).pubsub(ignore_subscribe_messages=True) for node in cluster.nodes]
    for subscriber in subscribers:
        subscriber.subscribe(names[1])
    record(recording(redis_url=plain_url(cluster, names[0])), range(3))
    assert sollol_otel.force_flush(10)
    for subscriber in subscribers:
        got: list[str] = []

        def three(subscriber: redis.client.PubSub = subscriber, got: list[str] = got) -> bool:
            message = subscriber.get_message(timeout=0.1)
            if message is not None:
                got.append(json.loads(message["data"])["reason"])
            return len(got) == 3

        eventually(three, what="three messages on each node")
        assert got == reasons(range(3))
        subscriber.close()


def test_tail_and_stats_read_through_any_node_and_the_cluster_url(
    cluster: ClusterDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    command: Callable[..., Running],
) -> None:
    record(recording(redis_url=plain_url(cluster, names[0])), range(10))
    assert sollol_otel.force_flush(10)
    tail = command(plain_url(cluster, names[0]), "tail", "--history", "10", "-o", "json")
    assert tail.exit_code(30) == 0
    assert [e["reason"] for e in json_lines("\n".join(tail.stdout))] == reasons(range(10))
    seeds = ",".join(f"127.0.0.1:{node.port}" for node in cluster.nodes)
    stats = command(f"redis+cluster://{seeds}", "stats", "-o", "json")
    assert stats.exit_code(30) == 0
    assert json.loads("\n".join(stats.stdout))["events"] == 10


async def test_the_dashboard_serves_history_and_live_events_through_any_node(
    cluster: ClusterDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    dashboard: Callable[[str], DashboardServer],
) -> None:
    logger = recording(redis_url=plain_url(cluster, names[0]))
    record(logger, range(5))
    assert await asyncio.to_thread(sollol_otel.force_flush, 10)
    async with ws_feed(dashboard(plain_url(cluster, names[0])), "batch=1") as feed:
        await feed.caught_up()
        record(logger, range(5, 10))
        messages = await feed.until(lambda ms: len(feed_reasons(ms)) >= 10, timeout=SLOW)
    assert feed_reasons(messages) == reasons(range(10))


def test_the_receiver_writes_into_the_cluster_through_any_node(
    cluster: ClusterDeployment, names: tuple[str, str], receiver: Callable[[str], Receiver]
) -> None:
    receiver(plain_url(cluster, names[0])).send(range(5))
    eventually(
        lambda: stream_reasons(owner(cluster, names[0]), names[0]) == reasons(range(5)),
        timeout=SLOW,
        what="the receiver's events in the stream",
    )


async def test_writer_tail_and_dashboard_follow_the_stream_when_its_slot_moves(
    cluster: ClusterDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    command: Callable[..., Running],
    dashboard: Callable[[str], DashboardServer],
) -> None:
    url = plain_url(cluster, names[0])
    given, holder = cluster.other_port(names[0]), cluster.owner_port(names[0])
    third = next(node.port for node in cluster.nodes if node.port not in (given, holder))
    logger = recording(redis_url=url)
    tail = command(url, "tail", "-o", "json", "--reconnect-timeout", str(SLOW))
    await asyncio.to_thread(tail.wait_for, lambda: tail.stderr_has("following"))
    async with ws_feed(dashboard(url), "batch=1") as feed:
        await feed.caught_up()
        record(logger, range(10))
        assert await asyncio.to_thread(sollol_otel.force_flush, 10)
        await asyncio.to_thread(cluster.move_slot, names[0], third)  # a resharding, mid-stream
        record(logger, range(10, 20))
        assert await asyncio.to_thread(sollol_otel.force_flush, SLOW)
        everything = reasons(range(20))
        messages = await feed.until(lambda ms: set(everything) <= set(feed_reasons(ms)), timeout=SLOW)
    await asyncio.to_thread(tail.wait_for, lambda: set(everything) <= set(tail_reasons(tail)), SLOW)
    assert stream_reasons(owner(cluster, names[0]), names[0]) == everything
    assert each_once(feed_reasons(messages), everything)
    assert each_once(tail_reasons(tail), everything)


def test_database_0_named_in_a_cluster_url_works_for_writer_tail_and_stats(
    cluster: ClusterDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    command: Callable[..., Running],
) -> None:
    seeds = ",".join(f"127.0.0.1:{node.port}" for node in cluster.nodes)
    record(recording(redis_url=f"{plain_url(cluster, names[0])}/0"), range(3))
    assert sollol_otel.force_flush(10)
    for url in (f"{plain_url(cluster, names[0])}/0", f"redis+cluster://{seeds}/0"):
        tail = command(url, "tail", "--history", "10", "-o", "json")
        assert tail.exit_code(30) == 0
        assert [e["reason"] for e in json_lines("\n".join(tail.stdout))] == reasons(range(3))
        stats = command(url, "stats", "-o", "json")
        assert stats.exit_code(30) == 0 and json.loads("\n".join(stats.stdout))["events"] == 3


async def test_another_database_on_a_cluster_is_a_clear_error_for_every_command(
    cluster: ClusterDeployment,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    command: Callable[..., Running],
    dashboard: Callable[[str], DashboardServer],
) -> None:
    url = f"{plain_url(cluster, names[0])}/3"
    clear = "only database 0"
    record(recording(redis_url=url), range(1))
    await asyncio.to_thread(eventually, lambda: clear in (sollol_otel.bridge_stats().last_error or ""))
    stats = sollol_otel.bridge_stats()
    assert (stats.state, stats.connected, stats.healthy) == ("refused", True, False)
    for args in (("tail", "--history", "5"), ("tail",), ("stats",)):
        run = command(url, *args)
        assert await asyncio.to_thread(run.exit_code, 30) == 1 and run.stderr_has(clear), run.stderr
    async with ws_feed(dashboard(url), "batch=1") as feed:
        await feed.until(lambda ms: any(clear in str(m.get("detail")) for m in ms), timeout=SLOW)
    port = free_port()  # not the `receiver` fixture: it waits for a healthy receiver
    otlp = Receiver(f"http://127.0.0.1:{port}", command(url, "receiver", "--port", str(port)))
    await asyncio.to_thread(eventually, lambda: answers(("127.0.0.1", port)), SLOW)
    otlp.send(range(1))
    await asyncio.to_thread(otlp.process.wait_for, lambda: otlp.process.stderr_has(clear), SLOW)
