"""Dashboard options from the environment: access token, allowed origins, trace links, sizes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sollol_otel import settings

#: Events each feed sends before going live when the client names no resume point.
DEFAULT_BACKLOG = 100
#: Most events a client may ask for as backlog, or from /api/routing_events in one page.
MAX_BACKLOG = 10_000
#: Messages a client may have waiting before it counts as too slow and is disconnected (it then
#: resumes from the stream, losing nothing): two seconds at 1,000 events/s.
DEFAULT_CLIENT_QUEUE = 2_000
#: Seconds a client may take to accept one message before its connection is closed (it then
#: resumes from its last id): a client that stopped reading must not hold a socket and a session.
DEFAULT_SEND_TIMEOUT = 10.0
#: How long the hub gathers new events before fanning them out (SOLLOL_DASHBOARD_FLUSH_MS). It bounds
#: frames per client per second, which is what many clients cost; it adds at most this much latency.
DEFAULT_FLUSH_INTERVAL = settings.DASHBOARD_FLUSH_MS.default / 1000


@dataclass(frozen=True)
class DashboardConfig:
    """What the dashboard server needs beyond where the events are (that is `Settings`)."""

    token: str | None = field(default=None, repr=False)
    allowed_origins: frozenset[str] = frozenset()
    #: Host names served besides loopback names; `*` for any.
    allowed_hosts: frozenset[str] = frozenset()
    max_clients: int = settings.DASHBOARD_MAX_CLIENTS.default
    send_timeout: float = DEFAULT_SEND_TIMEOUT
    trace_url_template: str | None = None
    backlog: int = DEFAULT_BACKLOG
    client_queue: int = DEFAULT_CLIENT_QUEUE
    flush_interval: float = DEFAULT_FLUSH_INTERVAL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DashboardConfig:
        return cls(
            token=settings.DASHBOARD_TOKEN.read(environ),
            allowed_origins=settings.DASHBOARD_ALLOWED_ORIGINS.read(environ),
            allowed_hosts=settings.DASHBOARD_ALLOWED_HOSTS.read(environ),
            max_clients=settings.DASHBOARD_MAX_CLIENTS.read(environ),
            trace_url_template=settings.TRACE_URL_TEMPLATE.read(environ),
            flush_interval=settings.DASHBOARD_FLUSH_MS.read(environ) / 1000,
        )
