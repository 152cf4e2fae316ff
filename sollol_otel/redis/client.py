"""Redis clients for every deployment the URL can name, with timeouts always set so no caller hangs.

`sync_client` and `async_client` turn a SOLLOL_REDIS_URL (forms in `urls.py`) into redis-py's
client of the right kind: a plain one; a Sentinel-managed master (redis-py's Sentinel pool asks
the sentinels for the master on every new connection, so after a failover the next reconnect
lands on the new master); for a Cluster, the writer's RedisCluster (its pipeline goes to the
stream's master, see `pool_for_key`) and the readers' pool of connections to that one master
(see `_SlotOwnerPool`), both following MOVED and ASK. A plain URL to a Cluster node is
recognised by asking it (`INFO cluster`) when the client is made.
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

#: What a lost, stuck or reconfiguring Redis raises; readers and the writer retry on these alone.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,  # includes Sentinel's MasterNotFoundError and a full pool
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,  # a Cluster mid-failover
    redis.exceptions.TryAgainError,  # a Cluster slot mid-migration
    redis.exceptions.RedisClusterException,  # no Cluster node reachable (also SlotNotCoveredError)
    redis.exceptions.InvalidResponse,  # no Redis at that address: another protocol answers
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
        if not address.nodes:
            return redis.Redis.from_url(url, **common)
        ((host, port),) = address.nodes
        probe = redis.Redis(host=host, port=port, **_probe_options(address, common))
        try:
            is_cluster = _cluster_enabled(probe.info("cluster"))
        except redis.exceptions.NoPermissionError:  # an ACL user without INFO: a plain server
            is_cluster = False  # (redis+cluster:// says otherwise)
        finally:
            probe.close()
        if not is_cluster:
            return redis.Redis.from_url(url, **common)
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in address.nodes]  # type: ignore[no-untyped-call]
    return redis.RedisCluster(startup_nodes=nodes, **_cluster_options(address, common))


async def async_client(
    url: str, *, key: str, socket_timeout: float = SOCKET_TIMEOUT, max_connections: int | None = None
) -> redis.asyncio.Redis:
    """A client for a reader of `key` (pass a socket timeout longer than any XREAD block time).

    In a Cluster it talks to the master that holds `key` (see `_SlotOwnerPool`). `max_connections`
    bounds the pool, callers then queuing for a connection (up to POOL_WAIT) instead of opening
    hundreds; a Sentinel pool keeps redis-py's own. For a plain URL this asks the server whether
    it is a Cluster node, so it raises CONNECTION_ERRORS while Redis is unreachable.
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
        if not address.nodes:
            return _async_server(url, common, max_connections)
        ((host, port),) = address.nodes
        probe = redis.asyncio.Redis(host=host, port=port, **_probe_options(address, common))
        try:
            is_cluster = _cluster_enabled(await probe.info("cluster"))
        except redis.exceptions.NoPermissionError:
            is_cluster = False
        finally:
            await probe.aclose()
        if not is_cluster:
            return _async_server(url, common, max_connections)
    nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in address.nodes]
    options = _cluster_options(address, common)
    cluster = redis.asyncio.RedisCluster(startup_nodes=nodes, **options)
    options = {k: v for k, v in options.items() if k != "ssl"}
    connection_class = _SlotOwnerSSLConnection if address.tls else _SlotOwnerConnection
    pool = _SlotOwnerPool(
        _SlotOwner(cluster, key),
        connection_class=connection_class,
        max_connections=max_connections or _UNBOUNDED,
        timeout=POOL_WAIT,
        **options,
    )
    return redis.asyncio.Redis.from_pool(pool)


#: Seconds a read waits for a free pooled connection before counting Redis as unavailable.
POOL_WAIT = 10.0
_UNBOUNDED = 1_000_000


def _async_server(url: str, common: dict[str, Any], max_connections: int | None) -> redis.asyncio.Redis:
    if max_connections is None:
        return redis.asyncio.Redis.from_url(url, **common)
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT, **common
    )
    return redis.asyncio.Redis.from_pool(pool)


class _SlotOwner:
    """Which Cluster master holds one key's slot, as redis-py's RedisCluster knows the slot map."""

    def __init__(self, cluster: redis.asyncio.RedisCluster, key: str) -> None:
        self.cluster = cluster
        self._key = key
        self._stale = False

    async def address(self) -> tuple[str, int]:
        if self._stale:
            self._stale = False
            await self.cluster.nodes_manager.initialize()
        await self.cluster.initialize()
        node = self.cluster.get_node_from_key(self._key)
        if node is None:
            raise redis.exceptions.SlotNotCoveredError(f"no Cluster master serves the slot of {self._key!r}")
        return node.host, int(node.port)

    def moved(self) -> None:
        """Ask the Cluster again before the next connection: the slot moved, or its master is gone."""
        self._stale = True


class _SlotOwnerConnection(redis.asyncio.Connection):
    """A connection to the master holding the reader's key, found anew on every connect (as
    redis-py's Sentinel connections find the master); MOVED or ASK ends it as a ConnectionError,
    so the reader's reconnect reaches the slot's new owner."""

    def __init__(self, *, slot_owner: _SlotOwner, **kwargs: Any) -> None:
        self._slot_owner = slot_owner
        super().__init__(**kwargs)

    async def connect(self) -> None:
        if self.is_connected:
            return
        try:
            self.host, self.port = await self._slot_owner.address()
            await super().connect()  # type: ignore[no-untyped-call]
        except CONNECTION_ERRORS:
            self._slot_owner.moved()
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except (redis.exceptions.MovedError, redis.exceptions.AskError) as exc:
            self._slot_owner.moved()
            await self.disconnect()
            raise redis.ConnectionError(f"the stream's Cluster slot moved ({exc})") from exc


class _SlotOwnerSSLConnection(_SlotOwnerConnection, redis.asyncio.SSLConnection):
    pass


class _SlotOwnerPool(redis.asyncio.BlockingConnectionPool):
    """Connections to the one master a reader needs: its stream is one key, in one slot.

    Why not redis-py's asyncio RedisCluster for the reads themselves: the reader takes XINFO
    and XREAD in one MULTI, which its ClusterPipeline cannot run (it queues commands through
    threads with event loops of their own). On one node MULTI works as on a plain server.
    """

    def __init__(self, slot_owner: _SlotOwner, **kwargs: Any) -> None:
        self._cluster = slot_owner.cluster
        super().__init__(slot_owner=slot_owner, **kwargs)

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        await self._cluster.aclose()


def _cluster_enabled(info: dict[str, Any]) -> bool:
    return bool(int(info.get("cluster_enabled", 0)))


class ClusterDatabaseError(redis.exceptions.ResponseError):
    """The URL names a database other than 0, and Redis is a Cluster: it has only database 0."""


def _probe_options(address: RedisAddress, common: dict[str, Any]) -> dict[str, Any]:
    """The URL's options on database 0: in another one a Cluster node refuses the connection
    (SELECT is not allowed) before it can say it is a Cluster node."""
    return {**address.options, "db": 0, **common}


def _cluster_options(address: RedisAddress, common: dict[str, Any]) -> dict[str, Any]:
    """The URL's options for a Cluster client: `/0` is every Cluster's one database, any other a mistake."""
    options = {**address.options, **common}
    db = options.pop("db", 0)
    if db not in (0, None):
        raise ClusterDatabaseError(
            f"this Redis is a Cluster, which has only database 0, and the URL names database {db}: "
            f"drop /{db} from the URL (or use /0)"
        )
    return options


class LazyClient:
    """An asyncio client made on first use, for servers that must start while Redis is away.

    The kind of deployment behind a plain URL is only known once Redis answers; until then
    `get()` raises CONNECTION_ERRORS like any read would.
    """

    def __init__(self, url: str, *, key: str, **options: Any) -> None:
        self._url = url
        self._key = key
        self._options = options
        self._client: redis.asyncio.Redis | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> redis.asyncio.Redis:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await async_client(self._url, key=self._key, **self._options)
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
