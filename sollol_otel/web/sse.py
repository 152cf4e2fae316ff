"""A lean Server-Sent Events response: each chunk goes straight to the ASGI `send`.

The feeds send one chunk per client per fan-out (50 a second each), so the per-chunk cost is
what hundreds of clients cost. sse-starlette spends a cancel scope (the send timeout) and an
anyio task group's wrappers on every chunk; here the chunk's send is two attribute stores and
the ASGI call. The rest happens once a second per client, in a housekeeping task: a ping
comment when the feed has been quiet for `ping` seconds, and the end of the response when one
chunk has waited longer than `send_timeout` for the client to read (a stalled client must not
hold its connection and session forever). A third task ends the response when the client
disconnects. The body iterator is always closed, so its session unsubscribes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping

from starlette.types import Receive, Scope, Send

#: How often the housekeeping task looks at the feed.
CHECK_INTERVAL = 1.0
PING = b": ping\n\n"


class SseResponse:
    """`text/event-stream` of the chunks `body` yields, with pings and a send timeout."""

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        *,
        ping: float,
        send_timeout: float,
        headers: Mapping[str, str],
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self._body = body
        self._ping = ping
        self._send_timeout = send_timeout
        self._check_interval = check_interval
        self._headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()),
        ]
        self._sending_since: float | None = None
        self._last_sent = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            await self._body.aclose()
            return
        self._last_sent = asyncio.get_running_loop().time()
        stream = asyncio.create_task(self._stream(send))
        others = [
            asyncio.create_task(self._housekeeping(send)),
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
            await self._body.aclose()
        if stream.done() and not stream.cancelled():
            stream.result()  # a failure of the feed propagates
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream(self, send: Send) -> None:
        loop = asyncio.get_running_loop()
        async for chunk in self._body:
            self._sending_since = loop.time()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self._last_sent = loop.time()
            self._sending_since = None

    async def _housekeeping(self, send: Send) -> None:
        """Returns when the client has stopped reading; pings while the feed is quiet."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._check_interval)
            now = loop.time()
            if self._sending_since is not None:
                if now - self._sending_since > self._send_timeout:
                    return
            elif now - self._last_sent >= self._ping:
                self._last_sent = now
                try:
                    await asyncio.wait_for(
                        send({"type": "http.response.body", "body": PING, "more_body": True}),
                        self._send_timeout,
                    )
                except asyncio.TimeoutError:
                    return


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
