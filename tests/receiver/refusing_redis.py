"""Real Redis servers in each state that refuses work, for the health checks of both servers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import redis
from redis_servers import RedisServer, free_port

PASSWORD = "s3cret-pw"
#: What the writer and the readers need besides the commands under test: HELLO, INFO (which
#: kind of deployment), CLIENT ID.
_BASICS = ("+@connection", "+info", "+client")


@contextmanager
def refusing(kind: str, shared_url: str, stream: str, allowed: Sequence[str] = ()) -> Iterator[str]:
    """The URL of a Redis in state `kind`: "OOM" (maxmemory reached), "READONLY" (a replica),
    "WRONGTYPE" (the stream's key holds a string), "NOPERM" (a user allowed only `allowed`
    commands), "down" (nothing listens)."""
    with ExitStack() as stack:
        if kind == "down":
            yield f"redis://127.0.0.1:{free_port()}"
            return
        if kind == "WRONGTYPE":
            client = stack.enter_context(redis.Redis.from_url(shared_url))
            client.set(stream, "not a stream")
            yield shared_url
            return
        options = {"OOM": ["--maxmemory", "1", "--maxmemory-policy", "noeviction"]}.get(kind, [])
        server = stack.enter_context(_running(RedisServer(args=options)))
        if kind == "READONLY":
            replica = stack.enter_context(
                _running(RedisServer(args=["--replicaof", "127.0.0.1", str(server.port)]))
            )
            yield replica.url
            return
        if kind == "NOPERM":
            with redis.Redis.from_url(server.url) as admin:
                admin.acl_setuser(
                    "limited", enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], channels=["*"],
                    commands=[*_BASICS, *allowed],
                )  # fmt: skip
            yield server.url.replace("redis://", f"redis://limited:{PASSWORD}@")
            return
        yield server.url


@contextmanager
def _running(server: RedisServer) -> Iterator[RedisServer]:
    server.start()
    try:
        yield server
    finally:
        server.close()
