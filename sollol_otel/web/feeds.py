"""The live feeds, WebSocket and SSE: backlog or catch-up first, then live, each event exactly once.

A session subscribes to the hub *before* it reads the stream, so nothing written meanwhile
is missed; live messages at or below the position the read reached are duplicates and are
skipped. A client that resumes with the last id it saw (WS `?last_id=`, SSE `Last-Event-ID`)
gets everything after it, or an explicit gap when the stream no longer holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from sollol_otel.filters import EventFilter
from sollol_otel.redis.client import CONNECTION_ERRORS
from sollol_otel.redis.stream import StreamKey, stream_key
from sollol_otel.redis.urls import scrub
from sollol_otel.web.backlog import catch_up, recent
from sollol_otel.web.config import MAX_BACKLOG
from sollol_otel.web.hub import HubStopped, Overflowed
from sollol_otel.web.messages import MAX_BATCH, Batch, Message, control, gap_message
from sollol_otel.web.params import (
    MAX_OFFSET,
    BadParameter,
    bounded_int,
    event_filter,
    optional_int,
    stream_id,
    time_range,
)
from sollol_otel.web.security import origin_allowed
from sollol_otel.web.sse import SseResponse
from sollol_otel.web.state import DashboardState, state_of

log = logging.getLogger(__name__)

#: How long a new session waits for the hub's first connection to Redis.
READY_TIMEOUT = 3.0
#: Seconds a client refused for being one too many is asked to wait before trying again.
RETRY_AFTER_BUSY = 5
#: Seconds of quiet after which an SSE feed sends a ping comment (keeps proxies from closing it).
SSE_PING = 15.0
#: Milliseconds an SSE client waits before reconnecting (sent as `retry:`).
SSE_RETRY_MS = 2000
#: WebSocket close codes: Redis unreachable (try again later), client too slow (resume).
CLOSE_UNAVAILABLE = 1013
CLOSE_SLOW = 4008
CLOSE_POLICY = 1008


class Unavailable(Exception):
    """Redis cannot be read right now; the client should reconnect later and resume."""


class FeedRequest:
    """A feed's parameters: filter, backlog size (from `since` on, if given), resume point if any."""

    def __init__(self, params: QueryParams, last_event_id: str | None, default_backlog: int) -> None:
        self.filter: EventFilter = event_filter(params)
        self.since = time_range(params)
        if self.since.until is not None:
            raise BadParameter("until applies to history (/api/routing_events); a live feed has no end")
        self.backlog = bounded_int(params, "backlog", default_backlog, MAX_BACKLOG)
        self.last_id = stream_id(params, "last_id") or stream_id(
            {"Last-Event-ID": last_event_id or ""}, "Last-Event-ID"
        )
        self.offset = optional_int(params, "offset", MAX_OFFSET)


def _chunks(messages: list[Message]) -> list[Batch]:
    return [Batch(messages[i : i + MAX_BATCH]) for i in range(0, len(messages), MAX_BATCH)]


async def session(state: DashboardState, request: FeedRequest) -> AsyncIterator[Batch]:
    """The batches of one client's feed, in order; ends when the client must reconnect."""
    hub, stream = state.hub, state.settings.stream
    connected = control(
        "connected",
        message="✓ Connected to SOLLOL routing stream",
        filter=request.filter.label(),
        stream=stream,
        worker=os.getpid(),  # with `dashboard --workers N`, which process serves this feed
    )
    yield Batch([connected, hub.status_message()])
    try:
        await asyncio.wait_for(hub.ready.wait(), READY_TIMEOUT)
    except asyncio.TimeoutError:
        raise Unavailable from None
    last_sent: str | None = request.last_id
    with hub.subscribe(request.filter) as subscription:
        try:
            if request.last_id is None:
                found = await recent(
                    await state.client.get(),
                    stream,
                    request.filter,
                    request.backlog,
                    time_range=request.since,
                )
                position = found.position
                pages = [found.messages]
            else:
                position, pages = request.last_id, []
                async for messages, reached in catch_up(
                    await state.client.get(), stream, request.filter, request.last_id, request.offset
                ):
                    position = reached
                    pages.append(messages)
        except CONNECTION_ERRORS as exc:
            log.warning(
                "feed could not read the stream: %s",
                scrub(f"{type(exc).__name__}: {exc}", state.settings.redis_url),
            )
            raise Unavailable from None
        for page in pages:
            for batch in _chunks(page):
                last_sent = batch.last_id or last_sent
                yield batch
        yield Batch([control("caught_up", last_id=position)])
        mark: StreamKey | None = stream_key(position)
        while True:
            try:
                batches = await subscription.get()
            except HubStopped:
                raise Unavailable from None
            except Overflowed as exc:
                yield Batch([gap_message(after_id=last_sent, missed=exc.dropped, reason="slow_client")])
                return
            for pending in batches:
                batch = pending
                if mark is not None:
                    batch, mark = _after(batch, mark)
                if batch:
                    last_sent = batch.last_id or last_sent
                    yield batch


def _after(batch: Batch, mark: StreamKey) -> tuple[Batch, StreamKey | None]:
    """Drop what the stream read already covered; the mark is done once anything newer arrives."""
    messages = batch.messages
    for index, message in enumerate(messages):
        if message.reset or (message.key is not None and message.key > mark):
            if index == 0:
                return batch, None
            return Batch([m for m in messages[:index] if m.key is None] + messages[index:]), None
    return Batch([m for m in messages if m.key is None]), mark


async def websocket_feed(websocket: WebSocket) -> None:
    """`WS /ws/routing_events`: `?batch=1` sends JSON arrays (fewer frames), else one object a frame."""
    state = state_of(websocket)
    if not origin_allowed(websocket, state.config.allowed_origins):
        await websocket.close(code=CLOSE_POLICY)  # before accept: the handshake gets HTTP 403
        return
    if not state.feeds.take():
        await websocket.send_denial_response(_busy(state))  # the handshake gets HTTP 503
        return
    try:
        await _serve_websocket(websocket, state)
    finally:
        state.feeds.give_back()


def _busy(state: DashboardState) -> Response:
    return JSONResponse(
        {"error": f"{state.feeds.maximum} live feeds are served already; try again later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_BUSY)},
    )


async def _serve_websocket(websocket: WebSocket, state: DashboardState) -> None:
    await websocket.accept()
    try:
        request = FeedRequest(websocket.query_params, None, state.config.backlog)
    except BadParameter as exc:
        await websocket.send_json({"type": "error", "message": str(exc)})
        await websocket.close(code=CLOSE_POLICY, reason="bad parameter")
        return
    batched = websocket.query_params.get("batch", "").lower() in ("1", "true", "yes")
    sender = asyncio.create_task(_send_all(websocket, session(state, request), batched))
    listener = asyncio.create_task(_until_disconnect(websocket))
    done, _ = await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    for task in (sender, listener):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if sender in done and not sender.cancelled():
        code = sender.result() if sender.exception() is None else None
        if code is not None:
            with contextlib.suppress(Exception):
                await websocket.close(code=code)


async def _send_all(websocket: WebSocket, batches: AsyncIterator[Batch], batched: bool) -> int | None:
    """Sends until the session ends; returns the close code to use, or None if the socket died.

    A client that stops reading stalls only this task: the hub drops its queue, and the reaper
    aborts the connection once a send has waited past the send timeout.
    """
    try:
        async for batch in batches:
            for frame in batch.ws_frames(batched):
                await websocket.send_text(frame)
    except Unavailable:
        await websocket.send_text(state_of(websocket).hub.status_message().json)
        return CLOSE_UNAVAILABLE
    except (WebSocketDisconnect, RuntimeError, OSError):
        return None
    return CLOSE_SLOW


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # the feed takes no commands; anything a client sends is ignored


async def sse_feed(request: Request) -> Response | SseResponse:
    """`GET /sse/routing_events`: `id:` is the stream id; resumes from Last-Event-ID or `?last_id=`."""
    state = state_of(request)
    try:
        feed = FeedRequest(request.query_params, request.headers.get("last-event-id"), state.config.backlog)
    except BadParameter as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if not state.feeds.take():
        return _busy(state)
    return SseResponse(
        _sse_body(state, feed),
        ping=SSE_PING,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        on_close=state.feeds.give_back,
    )


async def _sse_body(state: DashboardState, feed: FeedRequest) -> AsyncGenerator[bytes, None]:
    yield f"retry: {SSE_RETRY_MS}\n\n".encode()
    try:
        async for batch in session(state, feed):
            yield batch.sse
    except Unavailable:
        yield state.hub.status_message().sse
