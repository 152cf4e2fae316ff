"""The JSON endpoints: history with paging, stats over the retained window, page config, health."""

from __future__ import annotations

import asyncio
import json
import os

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sollol_otel.identity import package_version
from sollol_otel.redis.client import CONNECTION_ERRORS, LazyClient
from sollol_otel.redis.urls import redact_url
from sollol_otel.web.backlog import recent
from sollol_otel.web.config import MAX_BACKLOG
from sollol_otel.web.params import BadParameter, bounded_int, event_filter, stream_id
from sollol_otel.web.state import state_of

#: /healthz gives Redis this long to answer PING.
HEALTH_TIMEOUT = 2.0
_HEALTH_ERRORS: tuple[type[BaseException], ...] = (asyncio.TimeoutError, *CONNECTION_ERRORS)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _unavailable(exc: BaseException) -> JSONResponse:
    return _error(503, f"Redis unavailable ({type(exc).__name__})")


async def routing_events(request: Request) -> Response:
    """`GET /api/routing_events`: the newest matching events, oldest first; `before` pages back."""
    state = state_of(request)
    params = request.query_params
    try:
        limit = bounded_int(params, "limit", state.config.backlog, MAX_BACKLOG)
        before = stream_id(params, "before", above_zero=True)
        flt = event_filter(params)
    except BadParameter as exc:
        return _error(400, str(exc))
    try:
        found = await recent(await state.client.get(), state.settings.stream, flt, limit, before)
    except CONNECTION_ERRORS as exc:
        return _unavailable(exc)
    body = '{"events":[' + ",".join(m.json for m in found.messages) + "]"
    body += f',"next_before":{json.dumps(found.next_before)}}}'
    return Response(body, media_type="application/json")


async def stats(request: Request) -> Response:
    """`GET /api/stats`: counts by event type, backend, model and instance, and recent rates."""
    state = state_of(request)
    try:
        flt = event_filter(request.query_params)
    except BadParameter as exc:
        return _error(400, str(exc))
    try:
        result = await state.counts.get(flt)
    except CONNECTION_ERRORS as exc:
        return _unavailable(exc)
    return JSONResponse({**result, "filter": flt.label(), "stream": state.settings.stream})


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
            "version": package_version(),
        }
    )


async def _ping(client: LazyClient) -> None:
    await (await client.get()).ping()


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
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )
