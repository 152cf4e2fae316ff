"""Exactly once across ambiguous failures: a batch sent to a Redis that then hangs lands once."""

from __future__ import annotations

import collections
from collections.abc import Callable

import pytest
import redis
from redis_servers import RedisServer
from waiting import eventually

import sollol_otel
from sollol_otel import RoutingLogger
from sollol_otel.redis.writer import RedisWriter
from sollol_otel.settings import Settings

from .conftest import balanced, raw_stream

Recording = Callable[..., RoutingLogger]


def stream_of(server: RedisServer, stream: str) -> list[dict[str, object]]:
    client = redis.Redis.from_url(server.url)
    try:
        return raw_stream(client, stream)
    finally:
        client.close()


def test_a_batch_sent_as_redis_hangs_lands_once_and_nothing_delivered_is_counted_dropped(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    logger = recording(redis_url=private_redis.url)
    logger.log_route_decision("m-0", "ollama", "r")
    assert sollol_otel.force_flush(5.0)
    private_redis.hang()  # SIGSTOP: the kernel takes the batch, Redis runs it only after SIGCONT
    for i in range(1, 300):
        logger.log_route_decision(f"m-{i}", "ollama", "r")
    eventually(lambda: sollol_otel.bridge_stats().state == "unreachable")
    private_redis.resume()
    assert sollol_otel.force_flush(20.0)
    events = stream_of(private_redis, keys[0])
    assert [event["model"] for event in events] == [f"m-{i}" for i in range(300)]
    assert len({event["event_id"] for event in events}) == 300
    stats = sollol_otel.bridge_stats()
    assert (stats.recorded, stats.exported, stats.dropped, stats.backlog) == (300, 300, 0, 0)
    assert stats.retried > 0 and balanced(stats)


def test_repeated_hangs_mid_stream_leave_no_duplicates(
    keys: tuple[str, str], private_redis: RedisServer
) -> None:
    settings = Settings(redis_url=private_redis.url, stream=keys[0], channel=keys[1], backlog=100_000)
    writer = RedisWriter(settings)
    for round_ in range(3):
        writer.submit([{"event_type": "ROUTE_DECISION", "model": f"{round_}-{i}"} for i in range(500)])
        private_redis.hang()
        writer.submit([{"event_type": "ROUTE_DECISION", "model": f"{round_}-late-{i}"} for i in range(500)])
        eventually(lambda: writer.stats().state == "unreachable")
        private_redis.resume()
        assert writer.flush(20.0)
    writer.close()
    events = stream_of(private_redis, keys[0])
    counts = collections.Counter(event["event_id"] for event in events)
    assert len(events) == 3_000 and max(counts.values()) == 1  # ids given by the writer: none twice
    stats = writer.stats()
    assert (stats.exported, stats.dropped, stats.backlog) == (3_000, 0, 0) and balanced(stats)


def test_a_user_who_may_not_read_the_stream_gets_every_event_at_least_once_and_is_told_why(
    keys: tuple[str, str], private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    admin = redis.Redis.from_url(private_redis.url)
    admin.acl_setuser(
        "writeonly",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+xadd", "+publish"],
    )
    admin.close()
    url = f"redis://writeonly:pw@127.0.0.1:{private_redis.port}"
    writer = RedisWriter(Settings(redis_url=url, stream=keys[0], channel=keys[1]))
    writer.submit([{"event_type": "ROUTE_DECISION", "model": "before"}])
    assert writer.flush(5.0)
    private_redis.hang()
    writer.submit([{"event_type": "ROUTE_DECISION", "model": f"m-{i}"} for i in range(100)])
    eventually(lambda: writer.stats().state == "unreachable")
    private_redis.resume()
    assert writer.flush(20.0)
    writer.close()
    models = {event["model"] for event in stream_of(private_redis, keys[0])}
    assert models == {"before", *(f"m-{i}" for i in range(100))}
    assert sum("grant +xrange for exactly once" in r.getMessage() for r in caplog.records) == 1
