"""The Starlette app factory and `serve`, used by `sollol-otel dashboard` and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn
import uvicorn.config
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from sollol_otel.access import (
    GuardedHTTPProtocol,
    allowed_hosts,
    fitted_connections,
    host_check,
    is_loopback,
    login_url,
    token_for,
    without_tokens,
)
from sollol_otel.history.indexer import IndexerThread
from sollol_otel.redis.client import LazyClient
from sollol_otel.redis.urls import redact_url
from sollol_otel.settings import Settings
from sollol_otel.web import api, export, security, timeline
from sollol_otel.web.config import DashboardConfig
from sollol_otel.web.counts import ResultCache
from sollol_otel.web.feeds import sse_feed, websocket_feed
from sollol_otel.web.hub import Hub
from sollol_otel.web.reaper import SendDeadline
from sollol_otel.web.security import SecurityHeaders, TokenAuth
from sollol_otel.web.state import DashboardState, FeedLimit

log = logging.getLogger(__name__)


def static_dir() -> Path:
    """The page's files: inside the wheel (`sollol_otel/_static`) or the repo's `dashboard/`."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_static", package.parent / "dashboard"):
        if (candidate / "index.html").is_file():
            return candidate
    raise RuntimeError(
        f"dashboard files not found in {package / '_static'} or {package.parent / 'dashboard'}"
    )


#: Redis connections shared by history reads, stats and health checks: when every page reconnects
#: at once (a server restart), reads queue for one instead of opening hundreds.
POOL_SIZE = 32


def create_app(
    settings: Settings | None = None,
    config: DashboardConfig | None = None,
    *,
    history_indexer: bool = True,
    history_dir: Path | None = None,
) -> Starlette:
    """The dashboard as an ASGI app; its stream reader (and, unless told not to, the history
    indexer, on its own thread) runs for the app's lifespan."""
    settings = settings or Settings.from_env()
    config = config or DashboardConfig.from_env()
    files = static_dir()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = Hub(settings, client_queue=config.client_queue, flush_interval=config.flush_interval)
        client = LazyClient(settings.redis_url, key=settings.stream, max_connections=POOL_SIZE)
        app.state.dashboard = DashboardState(
            settings, config, hub, client, ResultCache(), FeedLimit(config.max_clients)
        )
        indexer = IndexerThread(settings.redis_url, settings.stream, history_dir) if history_indexer else None
        await hub.start()
        if indexer is not None:
            app.state.dashboard.components["history"] = indexer
            indexer.start()
        try:
            yield
        finally:
            if indexer is not None:
                await asyncio.to_thread(indexer.stop)
            await hub.stop()
            await client.aclose()

    async def index(request: Request) -> Response:
        return FileResponse(files / "index.html", headers={"Cache-Control": "no-cache"})

    routes = [
        Route("/", index),
        Route("/api/routing_events", api.routing_events),
        Route("/api/routing_events/{id}", api.routing_event),
        Route("/api/stats", api.stats),
        Route("/api/timeline", timeline.timeline),
        Route("/api/config", api.config),
        Route("/api/ticket", security.ticket, methods=["POST"]),
        Route("/api/export", export.export),
        Route("/healthz", api.healthz),
        Route("/sse/routing_events", sse_feed),
        WebSocketRoute("/ws/routing_events", websocket_feed),
        Mount("/static", StaticFiles(directory=files), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        host_check(config.allowed_hosts),
        Middleware(TokenAuth, token=config.token),
    ]
    return _Dashboard(config.send_timeout, routes=routes, middleware=middleware, lifespan=lifespan)


class _Dashboard(Starlette):
    """Starlette with every send watched from outside all middleware, where the server's own `send`
    (and so the connection's socket) is at hand: a client that stops reading is disconnected."""

    def __init__(self, send_timeout: float, **options: Any) -> None:
        super().__init__(**options)
        self._send_timeout = send_timeout

    def build_middleware_stack(self) -> ASGIApp:
        return SendDeadline(super().build_middleware_stack(), self._send_timeout)


#: Feeds never end by themselves; on shutdown they get this long, then clients reconnect and resume.
GRACEFUL_SHUTDOWN_SECONDS = 2


def uvicorn_config(
    app: Starlette | Callable[[], Starlette], host: str, port: int, **options: object
) -> uvicorn.Config:
    """Without per-message deflate: compressing each frame for each client costs more than it saves;
    connections that send no request are closed (`GuardedHTTPProtocol`)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=GuardedHTTPProtocol,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **options,  # type: ignore[arg-type]
    )


def _worker_logging() -> dict[str, Any]:
    """uvicorn's logging plus ours: a worker process starts with no handlers of its own."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["root"] = {"handlers": ["default"], "level": "INFO"}
    return config


#: Connections beyond the live feeds (page loads, API calls, health checks) before uvicorn answers 503.
REQUEST_HEADROOM = 64
#: File descriptors the process needs besides client connections: Redis pools, the listener, stdio.
RESERVED_FILES = POOL_SIZE + 24


def connection_limit(max_clients: int) -> int:
    """Connections served at once; past it uvicorn answers 503 (and idle ones are closed first)."""
    return fitted_connections(max_clients + REQUEST_HEADROOM, RESERVED_FILES, "SOLLOL_DASHBOARD_MAX_CLIENTS")


def serve(
    settings: Settings | None = None,
    config: DashboardConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str = "info",
    allow_no_token: bool = False,
    history_indexer: bool = True,
    history_dir: Path | None = None,
) -> None:
    """Run the dashboard until interrupted, in `workers` processes sharing one listening socket.

    Each worker is a whole dashboard with its own stream reader; stream ids are the same in all,
    so a client resumes (Last-Event-ID, `?last_id=`) on whichever worker its reconnect reaches.
    uvicorn's supervisor starts a new worker when one dies.

    Bound beyond loopback it requires a token: SOLLOL_DASHBOARD_TOKEN, else one made here (shared by
    every worker) and printed once as a login URL, unless `allow_no_token` says something else
    guards the port. Each worker serves at most `connection_limit` connections.
    """
    settings = settings or Settings.from_env()
    config = config or DashboardConfig.from_env()
    token, generated = token_for(host, config.token, allow_no_token=allow_no_token)
    config = replace(config, token=token, allowed_hosts=allowed_hosts(host, token, config.allowed_hosts))
    if token is None and not is_loopback(host):
        log.warning("dashboard on %s without a token: anyone who can reach it sees every event", host)
    log.info(
        "routing dashboard on %s reading %s from %s%s",
        login_url("http", host, port),
        settings.stream,
        redact_url(settings.redis_url),
        f" in {workers} worker processes" if workers > 1 else "",
    )
    if generated:
        sys.stderr.write(
            "No SOLLOL_DASHBOARD_TOKEN is set and the dashboard listens beyond loopback, so it requires "
            f"this token, made for this run. Open:\n    {login_url('http', host, port, token)}\n"
        )
        sys.stderr.flush()
    limit = connection_limit(config.max_clients)
    if workers == 1:
        options = uvicorn_config(
            create_app(settings, config, history_indexer=history_indexer, history_dir=history_dir),
            host,
            port,
            log_level=log_level,
            limit_concurrency=limit,
            log_config=without_tokens(uvicorn.config.LOGGING_CONFIG),
        )
        uvicorn.Server(options).run()
        return
    factory = functools.partial(  # pickled into each worker
        create_app, settings, config, history_indexer=history_indexer, history_dir=history_dir
    )  # pickled into each worker
    options = uvicorn_config(
        factory,
        host,
        port,
        factory=True,
        workers=workers,
        log_level=log_level,
        limit_concurrency=limit,
        log_config=without_tokens(_worker_logging()),
    )
    Multiprocess(options, sockets=[options.bind_socket()]).run()
