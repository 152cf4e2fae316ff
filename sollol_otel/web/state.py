"""What every request handler shares: settings, options, the hub, a Redis client, the result cache."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from sollol_otel.redis.client import LazyClient
from sollol_otel.settings import Settings
from sollol_otel.web.config import DashboardConfig
from sollol_otel.web.hub import Hub
from sollol_otel.web.stats import ResultCache


@dataclass(frozen=True)
class DashboardState:
    settings: Settings
    config: DashboardConfig
    hub: Hub
    client: LazyClient
    cache: ResultCache


def state_of(connection: HTTPConnection) -> DashboardState:
    state: DashboardState = connection.app.state.dashboard
    return state
