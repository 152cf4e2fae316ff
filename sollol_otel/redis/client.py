"""Redis clients for every deployment the URL can name, with timeouts always set so no caller hangs.

`sync_client` and `async_client` turn a SOLLOL_REDIS_URL (forms in `urls.py`) into redis-py's
client of the right kind: a plain one; a Sentinel-managed master (redis-py's Sentinel pool asks
the sentinels for the master on every new connection, so after a failover the next reconnect
lands on the new master); or a RedisCluster, which follows MOVED and ASK by itself. A plain URL
to a Cluster node is recognised by asking it (`INFO cluster`) when the client is made.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.exceptions
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from sollol_otel.redis.urls import RedisAddress, Topology, parse_redis_url

#: A hung server (accepts TCP, never answers) costs at most this long per attempt.
CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 2.0

SyncClient: TypeAlias = "redis.Redis | redis.RedisCluster"
AsyncClient: TypeAlias = "redis.asyncio.Redis | redis.asyncio.RedisCluster"

#: What a lost, stuck or reconfiguring Redis raises; readers and the writer retry on these alone.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,  # includes Sentinel's MasterNotFoundError and a full pool
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,  # a Cluster mid-failover
    redis.exceptions.TryAgainError,  # a Cluster slot mid-migration
    redis.exceptions.RedisClusterException,  # no Cluster node reachable (also SlotNotCoveredError)
    ConnectionError,
    TimeoutError,
    OSError,
)


def _timeouts(socket_timeout: float, retry: Any) -> dict[str, Any]:
    # We back off ourselves; redis-py's default retries multiply hangs.
    return {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": socket_timeout, "retry": retry}


def sync_client(url: str, *, socket_timeout: float = SOCKET_TIMEOUT) -> SyncClient:
    """A client for the writer's thread; for a plain URL this asks the server whether it is a Cluster
    node, so it raises CONNECTION_ERRORS while Redis is unreachable."""
    address = parse_redis_url(url)
    common = _timeouts(socket_timeout, Retry(NoBackoff(), 0))
    if address.topology is Topology.SENTINEL:
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            address.nodes, sentinel_kwargs={**common, **address.sentinel_options}, **common
        )
        master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            address.service, **address.options
        )
        return master
    if address.topology is Topology.SERVER:
        client = redis.Redis.from_url(url, **common)
        try:
            if not address.nodes or not _cluster_enabled(client.info("cluster")):
                return client
        except redis.exceptions.NoPermissionError:
            return (
                client  # an ACL user without INFO: taken as a plain server (redis+cluster:// says otherwise)
            )
        except BaseException:
            client.close()
            raise
        client.close()
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in address.nodes]  # type: ignore[no-untyped-call]
    return redis.RedisCluster(startup_nodes=nodes, **common, **address.options)


async def async_client(
    url: str, *, socket_timeout: float = SOCKET_TIMEOUT, max_connections: int | None = None
) -> AsyncClient:
    """A client for readers (pass a socket timeout longer than any XREAD block time).

    `max_connections` bounds a plain server's pool, callers then queuing for a connection (up
    to POOL_WAIT) instead of opening hundreds; Sentinel and Cluster pools keep redis-py's own
    limits. For a plain URL this asks the server whether it is a Cluster node, so it raises
    CONNECTION_ERRORS while Redis is unreachable.
    """
    address = parse_redis_url(url)
    common = _timeouts(socket_timeout, AsyncRetry(NoBackoff(), 0))
    if address.topology is Topology.SENTINEL:
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            address.nodes, sentinel_kwargs={**common, **address.sentinel_options}, **common
        )
        master: redis.asyncio.Redis = sentinel.master_for(address.service or "", **address.options)
        return master
    if address.topology is Topology.SERVER:
        client = _async_server(url, common, max_connections)
        try:
            if not address.nodes or not _cluster_enabled(await client.info("cluster")):
                return client
        except redis.exceptions.NoPermissionError:
            return client
        except BaseException:
            await client.aclose()
            raise
        await client.aclose()
    return _async_cluster(address, common)


#: Seconds a read waits for a free pooled connection before counting Redis as unavailable.
POOL_WAIT = 10.0


def _async_server(url: str, common: dict[str, Any], max_connections: int | None) -> redis.asyncio.Redis:
    if max_connections is None:
        return redis.asyncio.Redis.from_url(url, **common)
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT, **common
    )
    return redis.asyncio.Redis.from_pool(pool)


def _async_cluster(address: RedisAddress, common: dict[str, Any]) -> redis.asyncio.RedisCluster:
    nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in address.nodes]
    return redis.asyncio.RedisCluster(startup_nodes=nodes, **common, **address.options)


def _cluster_enabled(info: dict[str, Any]) -> bool:
    return bool(int(info.get("cluster_enabled", 0)))


class LazyClient:
    """An asyncio client made on first use, for servers that must start while Redis is away.

    The kind of deployment behind a plain URL is only known once Redis answers; until then
    `get()` raises CONNECTION_ERRORS like any read would.
    """

    def __init__(self, url: str, **options: Any) -> None:
        self._url = url
        self._options = options
        self._client: AsyncClient | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AsyncClient:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await async_client(self._url, **self._options)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def client_like(existing: redis.Redis) -> redis.Redis:
    """A client for the server an application's own client talks to, with our timeouts.

    SOLLOL's `get_routing_logger(redis_client=...)` hands us the application's client; we must
    not share its connections (or its missing timeouts) with our writer thread.
    """
    pool = existing.connection_pool
    kwargs = {
        **pool.connection_kwargs,
        **_timeouts(SOCKET_TIMEOUT, Retry(NoBackoff(), 0)),
        "decode_responses": False,
    }
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def pool_for_key(client: SyncClient, key: str) -> redis.ConnectionPool:
    """The connection pool of the server that holds `key`: in a Cluster, its slot's master."""
    if isinstance(client, redis.RedisCluster):
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        pool: redis.ConnectionPool = client.get_redis_connection(node).connection_pool
        return pool
    return client.connection_pool


def refresh_topology(client: SyncClient) -> None:
    """After MOVED or ASK: learn the Cluster's slot map again (a plain client has none)."""
    if isinstance(client, redis.RedisCluster):
        client.nodes_manager.initialize()
