"""A real dashboard (uvicorn in a thread) and real clients (websockets, httpx SSE) for the tests."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import redis
import uvicorn
from redis_servers import free_port
from sollol_events import sollol_event
from starlette.applications import Starlette
from waiting import eventually
from websockets.asyncio.client import ClientConnection, connect

from sollol_otel.settings import Settings
from sollol_otel.web.app import create_app, uvicorn_config
from sollol_otel.web.config import DashboardConfig
from sollol_otel.wire import encode, iso_timestamp

Message = dict[str, Any]


class DashboardServer:
    """The app under uvicorn on its own port; stop() and start() again keep the port."""

    def __init__(self, settings: Settings, config: DashboardConfig, history_indexer: bool = True) -> None:
        self.settings = settings
        self.config = config
        self.history_indexer = history_indexer
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self.app: Starlette | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/routing_events"

    def start(self) -> DashboardServer:
        app = self.app = create_app(self.settings, self.config, history_indexer=self.history_indexer)
        self._server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        eventually(lambda: self._server.started or not self._thread.is_alive(), what="the dashboard")
        if not self._server.started:
            raise RuntimeError("dashboard did not start")
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._server = self._thread = None


@contextmanager
def running_dashboards() -> Iterator[Callable[..., DashboardServer]]:
    """`start(settings, **options)` starts a dashboard (options: DashboardConfig's, and `history_indexer`);
    all stop at the end."""
    servers: list[DashboardServer] = []

    def start(settings: Settings, history_indexer: bool = True, **options: Any) -> DashboardServer:
        server = DashboardServer(settings, DashboardConfig(**options), history_indexer)
        servers.append(server.start())
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def write(client: redis.Redis, stream: str, count: int, start: int = 0, **fields: Any) -> list[str]:
    """XADD `count` events straight into the stream, as any SOLLOL instance would; their ids."""
    pipe = client.pipeline(transaction=False)
    for n in range(start, start + count):
        event = sollol_event(reason=f"sufficient_resources #{n}") | fields
        pipe.xadd(stream, {"event": encode(event)})
    return [i.decode() for i in pipe.execute()]


def resume_query(last: Message) -> str:
    """How a client resumes after the last event it got: its id, and its offset when Redis counts them
    (Redis 6.2 does not: the page then sends no offset either)."""
    offset = "" if last["offset"] is None else f"&offset={last['offset']}"
    return f"last_id={last['id']}{offset}"


def write_at(client: redis.Redis, stream: str, epoch_ms: int, *events: dict[str, Any]) -> list[str]:
    """XADD SOLLOL-shaped events (each `sollol_event` stamped `epoch_ms`, with the given keys changed)
    at a chosen time: ids `epoch_ms-0`, `epoch_ms-1`, ... so tests know each one's time bucket."""
    stamp = {"timestamp": iso_timestamp(epoch_ms * 1_000_000)}
    pipe = client.pipeline(transaction=False)
    for seq, changes in enumerate(events):
        pipe.xadd(stream, {"event": encode(sollol_event() | stamp | changes)}, id=f"{epoch_ms}-{seq}")
    return [i.decode() for i in pipe.execute()]


def reasons(messages: list[Message]) -> list[str]:
    return [m["reason"] for m in messages if m["type"] == "routing_event"]


class WsClient:
    """A WebSocket feed client that collects messages (batched frames unpacked)."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.messages: list[Message] = []

    async def until(self, predicate: Any, timeout: float = 5.0) -> list[Message]:
        """Read until `predicate(messages)` holds; all messages so far."""
        async with asyncio.timeout(timeout):
            while not predicate(self.messages):
                data = json.loads(await self.connection.recv())
                self.messages.extend(data if isinstance(data, list) else [data])
        return self.messages

    async def events(self, count: int, timeout: float = 5.0) -> list[Message]:
        await self.until(lambda ms: len([m for m in ms if m["type"] == "routing_event"]) >= count, timeout)
        return [m for m in self.messages if m["type"] == "routing_event"]

    async def caught_up(self) -> list[Message]:
        return await self.until(lambda ms: any(m["type"] == "caught_up" for m in ms))


@asynccontextmanager
async def ws_feed(server: DashboardServer, query: str = "", **kwargs: Any) -> AsyncIterator[WsClient]:
    async with connect(f"{server.ws_url}?{query}", **kwargs) as connection:
        yield WsClient(connection)


async def sse_messages(
    server: DashboardServer,
    query: str = "",
    headers: dict[str, str] | None = None,
    *,
    until: Any,
    timeout: float = 5.0,
) -> list[tuple[str | None, str, Message]]:
    """(id, event name, data) of each SSE event, read until `until(list)` holds."""
    out: list[tuple[str | None, str, Message]] = []
    async with (
        httpx.AsyncClient(timeout=timeout) as client,
        client.stream("GET", f"{server.url}/sse/routing_events?{query}", headers=headers) as response,
        asyncio.timeout(timeout),
    ):
        event_id: str | None = None
        name = "message"
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((event_id, name, json.loads(line[6:])))
                if until(out):
                    return out
            elif line == "":
                event_id, name = None, "message"
    return out
