"""Dashboard options from the environment: access token, allowed origins, trace links, sizes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sollol_otel.settings import SettingsError, parse_int

#: Events each feed sends before going live when the client names no resume point.
DEFAULT_BACKLOG = 100
#: Most events a client may ask for as backlog, or from /api/routing_events in one page.
MAX_BACKLOG = 10_000
#: Messages a client may have waiting before it counts as too slow and is disconnected (it then
#: resumes from the stream, losing nothing): two seconds at 1,000 events/s.
DEFAULT_CLIENT_QUEUE = 2_000
#: How long the hub gathers new events before fanning them out (SOLLOL_DASHBOARD_FLUSH_MS). It bounds
#: frames per client per second, which is what many clients cost; it adds at most this much latency.
DEFAULT_FLUSH_INTERVAL = 0.02


def _trace_template(raw: str | None) -> str | None:
    """Only http(s) templates with a {trace_id} slot: the page turns them into links."""
    if not raw:
        return None
    if "{trace_id}" not in raw:
        raise SettingsError(f"SOLLOL_TRACE_URL_TEMPLATE={raw!r} has no {{trace_id}} placeholder")
    if urlsplit(raw.replace("{trace_id}", "x")).scheme not in ("http", "https"):
        raise SettingsError(f"SOLLOL_TRACE_URL_TEMPLATE={raw!r} must be an http:// or https:// URL")
    return raw


def _flush_interval(raw: str | None) -> float:
    milliseconds = parse_int(
        "SOLLOL_DASHBOARD_FLUSH_MS", raw, round(DEFAULT_FLUSH_INTERVAL * 1000), minimum=0, maximum=1000
    )
    return milliseconds / 1000


def _origins(raw: str | None) -> frozenset[str]:
    return frozenset(part.strip().rstrip("/") for part in (raw or "").split(",") if part.strip())


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
        env = os.environ if environ is None else environ
        return cls(
            token=env.get("SOLLOL_DASHBOARD_TOKEN") or None,
            allowed_origins=_origins(env.get("SOLLOL_DASHBOARD_ALLOWED_ORIGINS")),
            trace_url_template=_trace_template(env.get("SOLLOL_TRACE_URL_TEMPLATE")),
            flush_interval=_flush_interval(env.get("SOLLOL_DASHBOARD_FLUSH_MS")),
        )
