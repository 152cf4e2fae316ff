"""A lean Server-Sent Events response: each chunk goes straight to the ASGI `send`.

The feeds send one chunk per client per fan-out (50 a second each), so the per-chunk cost is
what hundreds of clients cost. sse-starlette spends a cancel scope (the send timeout) and an
anyio task group's wrappers on every chunk; here the chunk's send is one ASGI call. A client that
stops reading is the reaper's business (reaper.SendDeadline aborts its connection). Once a
second a housekeeping task sends a ping comment when the feed has been quiet for `ping` seconds;
another task ends the response when the client disconnects. The body iterator is always closed,
so its session unsubscribes at once, and `on_close` runs however the response ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping

from starlette.types import Receive, Scope, Send

#: How often the housekeeping task looks at the feed.
CHECK_INTERVAL = 1.0
PING = b": ping\n\n"


class SseResponse:
    """`text/event-stream` of the chunks `body` yields, with pings."""

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        *,
        ping: float,
        headers: Mapping[str, str],
        on_close: Callable[[], None] | None = None,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self._body = body
        self._ping = ping
        self._on_close = on_close
        self._check_interval = check_interval
        self._headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()),
        ]
        self._last_sent = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._respond(scope, receive, send)
        finally:
            await self._body.aclose()
            if self._on_close is not None:
                self._on_close()

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        self._last_sent = asyncio.get_running_loop().time()
        stream = asyncio.create_task(self._stream(send))
        others = [
            asyncio.create_task(self._pings(send)),
            asyncio.create_task(_until_disconnect(receive)),
        ]
        try:
            await asyncio.wait([stream, *others], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stream, *others):
                task.cancel()
            for task in (stream, *others):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if stream.done() and not stream.cancelled():
            stream.result()  # a failure of the feed propagates
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream(self, send: Send) -> None:
        loop = asyncio.get_running_loop()
        async for chunk in self._body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self._last_sent = loop.time()

    async def _pings(self, send: Send) -> None:
        """A comment whenever the feed has been quiet for `ping` seconds."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._check_interval)
            if loop.time() - self._last_sent >= self._ping:
                self._last_sent = loop.time()
                await send({"type": "http.response.body", "body": PING, "more_body": True})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
