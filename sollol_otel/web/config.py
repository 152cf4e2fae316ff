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
#: How long the hub gathers new events before fanning them out (SOLLOL_DASHBOARD_FLUSH_MS). It bounds
#: frames per client per second, which is what many clients cost; it adds at most this much latency.
DEFAULT_FLUSH_INTERVAL = settings.DASHBOARD_FLUSH_MS.default / 1000


@dataclass(frozen=True)
class DashboardConfig:
    """What the dashboard server needs beyond where the events are (that is `Settings`)."""

    token: str | None = field(default=None, repr=False)
    allowed_origins: frozenset[str] = frozenset()
    trace_url_template: str | None = None
    backlog: int = DEFAULT_BACKLOG
    client_queue: int = DEFAULT_CLIENT_QUEUE
    flush_interval: float = DEFAULT_FLUSH_INTERVAL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DashboardConfig:
        return cls(
            token=settings.DASHBOARD_TOKEN.read(environ),
            allowed_origins=settings.DASHBOARD_ALLOWED_ORIGINS.read(environ),
            trace_url_template=settings.TRACE_URL_TEMPLATE.read(environ),
            flush_interval=settings.DASHBOARD_FLUSH_MS.read(environ) / 1000,
        )
