"""Redis clients with timeouts always set, so no caller ever hangs on a stuck server."""

from __future__ import annotations

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

#: A hung server (accepts TCP, never answers) costs at most this long per attempt.
CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 2.0


def sync_client(url: str, *, socket_timeout: float = SOCKET_TIMEOUT) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),  # we back off ourselves; redis-py's default retries multiply hangs
        decode_responses=False,
    )


def client_like(existing: redis.Redis) -> redis.Redis:
    """A client for the server an application's own client talks to, with our timeouts.

    SOLLOL's `get_routing_logger(redis_client=...)` hands us the application's client; we must
    not share its connections (or its missing timeouts) with our writer thread.
    """
    pool = existing.connection_pool
    kwargs = {
        **pool.connection_kwargs,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": False,
    }
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def async_client(url: str, *, socket_timeout: float = SOCKET_TIMEOUT) -> redis.asyncio.Redis:
    """For readers that block in XREAD: pass a socket timeout longer than the block time."""
    return redis.asyncio.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=socket_timeout,
        retry=AsyncRetry(NoBackoff(), 0),
        decode_responses=False,
    )


#: What a lost or stuck Redis raises; readers and the writer retry on these and nothing else.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)
