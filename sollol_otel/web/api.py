"""The JSON endpoints: history with paging, one event, stats over the retained window, page config,
health. (The timeline has its own module.)"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sollol_otel.events import MISSING, RoutingEvent
from sollol_otel.identity import package_version
from sollol_otel.redis.client import CONNECTION_ERRORS, LazyClient
from sollol_otel.redis.clock import redis_now_ms
from sollol_otel.redis.urls import redact_url
from sollol_otel.web.config import MAX_BACKLOG
from sollol_otel.web.counts import at_ms, question
from sollol_otel.web.from_history import events_page, one_event
from sollol_otel.web.from_history import stats as range_stats
from sollol_otel.web.messages import event_message
from sollol_otel.web.params import (
    BadParameter,
    bounded_int,
    event_filter,
    stream_id,
    time_range,
)
from sollol_otel.web.state import state_of
from sollol_otel.wire import decode

#: /healthz gives Redis this long to answer PING.
HEALTH_TIMEOUT = 2.0
_HEALTH_ERRORS: tuple[type[BaseException], ...] = (asyncio.TimeoutError, *CONNECTION_ERRORS)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def unavailable(exc: BaseException) -> JSONResponse:
    return error(503, f"Redis unavailable ({type(exc).__name__})")


async def routing_events(request: Request) -> Response:
    """`GET /api/routing_events`: the newest matching events in the time range, oldest first;
    `before` pages back."""
    state = state_of(request)
    params = request.query_params
    try:
        limit = bounded_int(params, "limit", state.config.backlog, MAX_BACKLOG)
        before = stream_id(params, "before", above_zero=True)
        flt = event_filter(params)
        client = await state.client.get()
        span = time_range(params, at_ms(await redis_now_ms(client)))
        found = await events_page(client, state.settings.stream, flt, limit, before, span)
    except BadParameter as exc:
        return error(400, str(exc))
    except CONNECTION_ERRORS as exc:
        return unavailable(exc)
    body = '{"events":[' + ",".join(m.json for m in found.messages) + "]"
    body += f',"next_before":{json.dumps(found.next_before)}}}'
    return Response(body, media_type="application/json")


async def routing_event(request: Request) -> Response:
    """`GET /api/routing_events/{id}`: one event by its stream id (a permalink's target)."""
    state = state_of(request)
    try:
        entry_id = stream_id(request.path_params, "id") or ""
    except BadParameter as exc:
        return error(400, str(exc))
    try:
        client = await state.client.get()
        found: Any = await client.xrange(state.settings.stream, entry_id, entry_id, count=1)
        event = decode(found[0][1]) if found else None
        if not found:
            kept = await one_event(client, state.settings.stream, entry_id)
            found, event = kept is not None, None if kept is None else kept.item
    except CONNECTION_ERRORS as exc:
        return unavailable(exc)
    if not isinstance(event, RoutingEvent):
        why = "is not a routing event" if found else "is not in the stream (trimmed, or never written)"
        return error(404, f"{entry_id} {why}")
    return Response(event_message(entry_id, None, event).json, media_type="application/json")


def cache_key(name: str, request: Request) -> tuple[str, ...]:
    """The query as written, so `since=15m` asked twice within the cache time is one computation."""
    params = request.query_params
    return (name, *sorted(f"{k}={v}" for k, v in params.multi_items()))


async def stats(request: Request) -> Response:
    """`GET /api/stats`: counts by event type, backend, model, node and instance over the time range
    (up to `last_id`, or the stream's end, which the answer's `last_id` names), recent rates, the top
    fallback reasons, and hints when the filter matched nothing. Each dimension names its `top`
    values; the rest are counted in `other` beside them."""
    state = state_of(request)
    params = request.query_params
    stream = state.settings.stream

    async def compute() -> dict[str, Any]:
        answer = await range_stats(client, stream, asked)
        return {**answer, "filter": asked.event_filter.label(), "stream": stream}

    try:
        client = await state.client.get()
        now_ms = await redis_now_ms(client)
        asked = question(params, now_ms)
        body = await state.cache.get(cache_key("stats", request), compute)
    except BadParameter as exc:
        return error(400, str(exc))
    except CONNECTION_ERRORS as exc:
        return unavailable(exc)
    return Response(body, media_type="application/json")


async def config(request: Request) -> Response:
    """`GET /api/config`: what the page needs to know about this server (never a secret)."""
    state = state_of(request)
    return JSONResponse(
        {
            "stream": state.settings.stream,
            "redis_url": redact_url(state.settings.redis_url),
            "trace_url_template": state.config.trace_url_template,
            "backlog": state.config.backlog,
            "max_backlog": MAX_BACKLOG,
            "missing_label": MISSING,
            "version": package_version(),
        }
    )


async def _ping(client: LazyClient) -> None:
    await (await client.get()).ping()


def _history_status(request: Request) -> dict[str, Any] | None:
    """This worker's history indexer, if it runs one; its state never fails the check."""
    indexer = getattr(request.app.state, "history_indexer", None)
    return None if indexer is None else dict(indexer.status())


async def healthz(request: Request) -> Response:
    """`GET /healthz`: 200 when Redis answers and the stream reader runs, else 503; the state either way."""
    state = state_of(request)
    hub = state.hub.state
    try:
        await asyncio.wait_for(_ping(state.client), HEALTH_TIMEOUT)
        redis_status, status = "up", 200 if hub.running else 503
    except _HEALTH_ERRORS:
        redis_status, status = "down", 503
    return JSONResponse(
        {
            "status": "ok" if status == 200 else "degraded",
            "redis": redis_status,
            "redis_url": redact_url(state.settings.redis_url),
            "stream": state.settings.stream,
            "reader": {
                "running": hub.running,
                "restarts": state.hub.restarts,
                "connected": hub.redis_up,
                "detail": hub.detail,
                "last_id": hub.last_id,
                "events": hub.events,
                "skipped": hub.skipped,
            },
            "clients": hub.clients,
            "worker": os.getpid(),
            # The history indexer's own state (trust-servers' component hook will carry it later).
            "history": _history_status(request),
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )
