"""Whatever Redis does, the router is never blocked and never sees an exception."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from redis_servers import RedisServer
from waiting import eventually

import sollol_otel
from sollol_otel import RoutingLogger

from .conftest import balanced, read_stream

Recording = Callable[..., RoutingLogger]


def record(logger: RoutingLogger, first: int, count: int) -> None:
    """Record `count` decisions numbered from `first` (the caller's cost is in bench_recording)."""
    for i in range(first, first + count):
        logger.log_route_decision(f"model-{i}", "ollama", "r")


def test_events_recorded_while_redis_is_down_arrive_in_order_after_restart(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    logger = recording(redis_url=private_redis.url)
    record(logger, 0, 50)
    assert sollol_otel.force_flush(5.0)
    private_redis.stop()
    record(logger, 50, 100)
    eventually(lambda: sollol_otel.bridge_stats().retried > 0)
    private_redis.start()  # same port; Redis keeps nothing on disk, so the first 50 are gone with it
    assert sollol_otel.force_flush(15.0)
    client = redis.Redis.from_url(private_redis.url)
    models = [e.model for e in read_stream(client, keys[0])]
    client.close()
    assert models == [f"model-{i}" for i in range(50, 150)]
    assert sollol_otel.bridge_stats().dropped == 0


def test_a_refusing_redis_does_not_slow_the_caller(recording: Recording, keys: tuple[str, str]) -> None:
    logger = recording(redis_url="redis://127.0.0.1:1")
    record(logger, 0, 500)
    eventually(lambda: sollol_otel.bridge_stats().retried > 0)


def test_a_hung_redis_does_not_block_the_caller_and_drops_are_counted(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    logger = recording(redis_url=private_redis.url, backlog=100)
    private_redis.hang()
    record(logger, 0, 1_000)
    eventually(lambda: sollol_otel.bridge_stats().dropped >= 800)
    stats = sollol_otel.bridge_stats()
    assert stats.backlog <= 100 + 1_000 - stats.dropped
    assert stats.dropped_by.keys() == {"backlog full"} and balanced(stats)
    private_redis.resume()


def test_redis_down_at_start_is_retried_until_it_comes_up(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    private_redis.stop()
    logger = recording(redis_url=private_redis.url)
    record(logger, 0, 10)
    eventually(lambda: sollol_otel.bridge_stats().retried > 0)
    private_redis.start()
    assert sollol_otel.force_flush(15.0)
    client = redis.Redis.from_url(private_redis.url)
    assert client.xlen(keys[0]) == 10
    client.close()


def test_while_redis_refuses_writes_the_stats_say_why_and_writing_resumes_by_itself(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    stream, channel = keys
    subscriber = redis_client.pubsub()
    subscriber.subscribe(channel)
    assert subscriber.get_message(timeout=1) is not None  # the subscription's confirmation
    redis_client.set(stream, "a foreign writer's string where the stream should be")
    logger = recording()
    logger.log_route_decision("refused", "ollama", "r")
    assert not sollol_otel.force_flush(1.0)
    stats = sollol_otel.bridge_stats()
    assert (stats.state, stats.healthy, stats.connected, stats.backlog) == ("refused", False, True, 1)
    assert stats.last_error is not None and "WRONGTYPE" in stats.last_error
    assert subscriber.get_message(timeout=0.2) is None  # no PUBLISH for an event not in the stream
    redis_client.delete(stream)
    logger.log_route_decision("accepted", "ollama", "r")
    assert sollol_otel.force_flush(10.0)
    assert [e.model for e in read_stream(redis_client, stream)] == ["refused", "accepted"]
    stats = sollol_otel.bridge_stats()
    assert (stats.state, stats.healthy, stats.exported, stats.dropped) == ("ok", True, 2, 0)
    assert balanced(stats)
    said = [r.getMessage() for r in caplog.records if r.name == "sollol_otel.redis.writer"]
    assert len(said) == 2 and "WRONGTYPE" in said[0] and "accepts routing events again" in said[1]
    subscriber.close()
