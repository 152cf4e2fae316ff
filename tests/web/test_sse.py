"""The SSE response on its own, through the ASGI interface: pings, a disconnect, the end of the feed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, MutableMapping
from typing import Any

from sollol_otel.web.sse import PING, SseResponse

SCOPE = {"type": "http", "method": "GET"}


class Body:
    """A feed body that yields what it is given and notes when it is closed."""

    def __init__(self) -> None:
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = asyncio.Event()

    async def __call__(self) -> AsyncGenerator[bytes, None]:
        try:
            while True:
                yield await self.chunks.get()
        finally:
            self.closed.set()


def response(body: Body, ping: float = 0.2, on_close: Any = None) -> SseResponse:
    return SseResponse(
        body(), ping=ping, headers={"Cache-Control": "no-store"}, on_close=on_close, check_interval=0.05
    )


async def never_disconnects() -> MutableMapping[str, Any]:
    await asyncio.Event().wait()
    return {"type": "http.disconnect"}


async def test_chunks_then_pings_when_quiet() -> None:
    body, sent = Body(), []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    task = asyncio.create_task(response(body)(SCOPE, never_disconnects, send))
    body.chunks.put_nowait(b"data: 1\n\n")
    await asyncio.sleep(0.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert body.closed.is_set()
    assert sent[0]["type"] == "http.response.start"
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    bodies = [m["body"] for m in sent[1:]]
    assert bodies[0] == b"data: 1\n\n"
    assert bodies[1:] and all(b == PING for b in bodies[1:])


async def test_on_close_runs_even_when_the_client_is_gone_before_the_first_chunk() -> None:
    closed: list[bool] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        raise OSError("the connection was aborted")

    with contextlib.suppress(OSError):
        await response(Body(), on_close=lambda: closed.append(True))(SCOPE, never_disconnects, send)
    assert closed == [True]


async def test_disconnect_ends_the_response_and_closes_the_feed() -> None:
    body, gone = Body(), asyncio.Event()

    async def send(message: MutableMapping[str, Any]) -> None:
        pass

    async def receive() -> MutableMapping[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    task = asyncio.create_task(response(body, ping=60)(SCOPE, receive, send))
    await asyncio.sleep(0.1)
    gone.set()
    await asyncio.wait_for(task, 1)
    assert body.closed.is_set()


async def test_a_finished_feed_completes_the_response() -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def finite() -> AsyncGenerator[bytes, None]:
        yield b"data: last\n\n"

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    sse = SseResponse(finite(), ping=60, headers={})
    await asyncio.wait_for(sse(SCOPE, never_disconnects, send), 1)
    assert [m.get("body") for m in sent[1:]] == [b"data: last\n\n", b""]
    assert sent[-1]["more_body"] is False
