"""The JSON endpoints: history with paging, one event, stats over the retained window, page config,
health. (The timeline has its own module.)"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sollol_otel import diagnostics
from sollol_otel.events import MISSING, RoutingEvent
from sollol_otel.identity import package_version
from sollol_otel.redis.client import CONNECTION_ERRORS, LazyClient
from sollol_otel.redis.clock import redis_now_ms
from sollol_otel.redis.urls import redact_url, scrub
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

log = logging.getLogger(__name__)

#: /healthz gives Redis this long to answer PING.
HEALTH_TIMEOUT = 2.0
_HEALTH_ERRORS: tuple[type[BaseException], ...] = (asyncio.TimeoutError, *CONNECTION_ERRORS)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def unavailable(exc: BaseException, redis_url: str) -> JSONResponse:
    """Which Redis (password redacted) did not answer, so a page or script can say where to look."""
    return error(503, f"Redis at {redact_url(redis_url)} unavailable ({type(exc).__name__})")


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
        return unavailable(exc, state.settings.redis_url)
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
        return unavailable(exc, state.settings.redis_url)
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
        return unavailable(exc, state.settings.redis_url)
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


async def _read_probe(client: LazyClient, stream: str) -> None:
    """Raise what Redis answers a read of the stream now (unreachable, NOPERM, WRONGTYPE...): an
    XREAD from `$` without BLOCK returns at once and reads nothing."""
    await (await client.get()).xread({stream: "$"}, count=1)


async def healthz(request: Request) -> Response:
    """`GET /healthz`: 200 only while the stream reader runs and Redis lets it read the stream, else
    503 with the state and the reason; components (the history indexer) report in the body."""
    state = state_of(request)
    hub = state.hub.state
    stream = state.settings.stream
    try:
        await asyncio.wait_for(_read_probe(state.client, stream), HEALTH_TIMEOUT)
        redis_status, health, reason = "up", "ok", None
    except _HEALTH_ERRORS as exc:
        redis_status, health, reason = "down", "unreachable", f"Redis unavailable ({type(exc).__name__})"
    except redis.RedisError as exc:
        text = scrub(f"{type(exc).__name__}: {exc}"[:500], state.settings.redis_url)
        redis_status, health, reason = "up", "refused", f"Redis refuses to read {stream!r} ({text})"
    except Exception as exc:  # a bug: still an answer the health checks can read, never a plain 500
        log.exception("/healthz failed")
        redis_status, health, reason = "unknown", "error", f"health check failed ({type(exc).__name__})"
    if health == "ok" and not hub.running:
        health, reason = "reader stopped", hub.detail
    status, body = diagnostics.health(
        health,
        reason,
        state.components,
        redis=redis_status,
        redis_url=redact_url(state.settings.redis_url),
        stream=stream,
        reader={
            "running": hub.running,
            "restarts": state.hub.restarts,
            "connected": hub.redis_up,
            "detail": hub.detail,
            "last_id": hub.last_id,
            "events": hub.events,
            "skipped": hub.skipped,
        },
        clients=hub.clients,
        worker=os.getpid(),
    )
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
