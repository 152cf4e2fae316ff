"""Redis answering but refusing the writes is a state: said once, visible in the stats, and over by itself.

Each server state is real: a replica (READONLY), `maxmemory` (OOM), ACL users (NOPERM). WRONGTYPE
is in test_resilience.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from redis_servers import RedisServer
from waiting import eventually

import sollol_otel
from sollol_otel import RoutingLogger

from .conftest import balanced, raw_stream

Recording = Callable[..., RoutingLogger]
PASSWORD = "s3cret-pw"


@pytest.fixture
def replica(private_redis: RedisServer) -> Iterator[RedisServer]:
    """A real replica of `private_redis`."""
    server = RedisServer(args=("--replicaof", "127.0.0.1", str(private_redis.port))).start()
    try:
        yield server
    finally:
        server.close()


def admin(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def refused_with(code: str) -> bool:
    stats = sollol_otel.bridge_stats()
    return stats.state == "refused" and code in (stats.last_error or "")


def test_a_read_only_replica_holds_events_until_it_is_promoted(
    recording: Recording, keys: tuple[str, str], replica: RedisServer
) -> None:
    logger = recording(redis_url=replica.url)
    logger.log_route_decision("during failover", "ollama", "r")
    eventually(lambda: refused_with("READONLY"))
    assert not sollol_otel.force_flush(0.5)
    stats = sollol_otel.bridge_stats()
    assert (stats.healthy, stats.connected, stats.backlog, stats.dropped) == (False, True, 1, 0)
    client = admin(replica)
    client.replicaof("NO", "ONE")  # what Sentinel does to the replica it promotes
    assert sollol_otel.force_flush(15.0)
    assert [event["model"] for event in raw_stream(client, keys[0])] == ["during failover"]
    client.close()
    stats = sollol_otel.bridge_stats()
    assert (stats.state, stats.healthy, stats.exported) == ("ok", True, 1) and balanced(stats)


def test_out_of_memory_holds_events_until_memory_is_allowed_again(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    client = admin(private_redis)
    client.config_set("maxmemory", "1")
    logger = recording(redis_url=private_redis.url)
    logger.log_route_decision("m", "ollama", "r")
    eventually(lambda: refused_with("OOM"))
    client.config_set("maxmemory", "0")
    assert sollol_otel.force_flush(15.0)
    assert client.xlen(keys[0]) == 1
    client.close()
    assert balanced(sollol_otel.bridge_stats())


def test_a_user_without_permission_to_write_is_a_state_and_its_password_never_shows(
    recording: Recording,
    keys: tuple[str, str],
    private_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = admin(private_redis)
    client.acl_setuser(
        "router", enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], channels=["*"], commands=["+publish"]
    )
    logger = recording(redis_url=f"redis://router:{PASSWORD}@127.0.0.1:{private_redis.port}")
    logger.log_route_decision("m", "ollama", "r")
    eventually(lambda: refused_with("NOPERM"))
    client.acl_setuser("router", enabled=True, commands=["+xadd"])
    assert sollol_otel.force_flush(15.0)
    assert client.xlen(keys[0]) == 1
    client.close()
    stats = sollol_otel.bridge_stats()
    assert stats.state == "ok" and "NOPERM" in (stats.last_error or "")  # the last error stays readable
    assert (stats.exported, stats.dropped) == (1, 0) and balanced(stats)
    assert PASSWORD not in repr(stats) and PASSWORD not in caplog.text
    assert "router:***@" in caplog.text


def test_a_refused_publish_leaves_events_in_the_stream_and_says_so(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    client = admin(private_redis)
    client.acl_setuser(
        "streamonly",
        enabled=True,
        passwords=[f"+{PASSWORD}"],
        keys=["*"],
        reset_channels=True,  # no channel permission: Redis 7's default for new users, explicit for 6.2
        commands=["+xadd", "+client|id"],
    )
    logger = recording(redis_url=f"redis://streamonly:{PASSWORD}@127.0.0.1:{private_redis.port}")
    for i in range(3):
        logger.log_route_decision(f"m-{i}", "ollama", "r")
    assert sollol_otel.force_flush(5.0)  # everything is in the stream
    assert client.xlen(keys[0]) == 3
    client.close()
    stats = sollol_otel.bridge_stats()
    assert (stats.state, stats.healthy, stats.exported, stats.unpublished) == ("publish refused", False, 3, 3)
    assert balanced(stats)


def test_a_database_redis_does_not_have_is_a_refusal_naming_the_cause(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    logger = recording(redis_url=f"{private_redis.url}/99")  # 16 databases: 0-15
    logger.log_route_decision("m", "ollama", "r")
    eventually(lambda: refused_with("DB index is out of range"))
    assert not sollol_otel.force_flush(0.5)
    stats = sollol_otel.bridge_stats()
    assert (stats.healthy, stats.connected, stats.backlog, stats.dropped) == (False, True, 1, 0)


def test_wrong_credentials_are_a_refusal_and_once_accepted_the_error_reads_as_over(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = admin(private_redis)
    client.acl_setuser(
        "router", enabled=True, passwords=["+right-pw"], keys=["*"], channels=["*"], commands=["+@all"]
    )
    logger = recording(redis_url=f"redis://router:{PASSWORD}@127.0.0.1:{private_redis.port}")
    logger.log_route_decision("m", "ollama", "r")
    eventually(lambda: refused_with("AuthenticationError"))
    assert not sollol_otel.force_flush(0.5) and sollol_otel.bridge_stats().connected
    client.acl_setuser("router", enabled=True, passwords=[f"+{PASSWORD}"])
    assert sollol_otel.force_flush(15.0)
    assert client.xlen(keys[0]) == 1
    client.close()
    stats = sollol_otel.bridge_stats()
    assert stats.state == "ok" and (stats.last_error or "").startswith("over since ")
    assert "(was refused): AuthenticationError" in (stats.last_error or "") and balanced(stats)
    assert PASSWORD not in repr(stats) and PASSWORD not in caplog.text


def test_a_password_with_at_signs_and_colons_pasted_unencoded_still_authenticates(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    client = admin(private_redis)
    client.config_set("requirepass", "p@ss:w@rd")
    logger = recording(redis_url=f"redis://:p@ss:w@rd@127.0.0.1:{private_redis.port}/0")
    logger.log_route_decision("m", "ollama", "r")
    assert sollol_otel.force_flush(10.0)
    authenticated = redis.Redis(port=private_redis.port, password="p@ss:w@rd")
    assert authenticated.xlen(keys[0]) == 1
    authenticated.close()


@pytest.mark.parametrize("query", ["", "?protocol=3"], ids=["AUTH missing", "HELLO refused"])
def test_a_server_asking_for_a_password_the_url_lacks_is_a_refusal(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer, query: str
) -> None:
    admin(private_redis).config_set("requirepass", PASSWORD)
    logger = recording(redis_url=f"{private_redis.url}/0{query}")
    logger.log_route_decision("m", "ollama", "r")
    eventually(lambda: refused_with("AuthenticationError"))
    stats = sollol_otel.bridge_stats()
    assert (stats.healthy, stats.connected, stats.backlog) == (False, True, 1)
