"""Clients that stop reading are disconnected: no send to a client may wait longer than the timeout.

A client that stops reading (a suspended laptop, a stalled proxy, a hostile script) fills the
kernel's buffers, then uvicorn's, and from then on each send to it waits. Ending its response is
not enough: closing a transport first flushes what is buffered, which never happens, so the socket
and its feed would stay forever. The connection is aborted instead: the TCP socket closes at once,
the feed sees a disconnect and unsubscribes, and the client resumes from its last id when it comes
back (with a gap reported if the stream no longer holds what it missed).

One task per server looks at every connection once a second; a send costs two attribute stores.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: How often the reaper looks for stalled sends.
CHECK_INTERVAL = 1.0


def connection_aborter(send: Send) -> Callable[[], None] | None:
    """What closes this connection's socket at once, from the server's own `send` (uvicorn's send is
    a method of the protocol or request cycle that owns the transport); None for other servers."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)  # asyncio's transports and uvloop's alike
    return abort if callable(abort) else None


class _Connection:
    __slots__ = ("abort", "sending_since")

    def __init__(self, abort: Callable[[], None]) -> None:
        self.abort = abort
        self.sending_since: float | None = None


class SendDeadline:
    """Outermost ASGI layer: aborts any HTTP or WebSocket connection whose send waited over `timeout` s."""

    def __init__(self, app: ASGIApp, timeout: float, check_interval: float = CHECK_INTERVAL) -> None:
        self.app = app
        self.timeout = timeout
        self.check_interval = check_interval
        self.reaped = 0
        self._connections: set[_Connection] = set()
        self._reaper: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        abort = connection_aborter(send) if scope["type"] in ("http", "websocket") else None
        if abort is None:
            await self.app(scope, receive, send)
            return
        connection = _Connection(abort)
        loop = asyncio.get_running_loop()

        async def watched(message: Message) -> None:
            connection.sending_since = loop.time()
            try:
                await send(message)
            finally:
                connection.sending_since = None

        self._connections.add(connection)
        if self._reaper is None:
            self._reaper = loop.create_task(self._reap(), name="sollol-otel-reaper")
        try:
            await self.app(scope, receive, watched)
        finally:
            self._connections.discard(connection)

    async def _reap(self) -> None:
        """Runs while there are connections; the next connection starts it again."""
        loop = asyncio.get_running_loop()
        try:
            while self._connections:
                await asyncio.sleep(self.check_interval)
                now = loop.time()
                for connection in list(self._connections):
                    since = connection.sending_since
                    if since is not None and now - since > self.timeout:
                        self._connections.discard(connection)
                        connection.abort()
                        self.reaped += 1
                        level = logging.WARNING if self.reaped == 1 else logging.DEBUG
                        log.log(
                            level, "closed a connection whose client stopped reading (%d so far)", self.reaped
                        )
        finally:
            self._reaper = None
