"""What every request handler shares: settings, options, the hub, a Redis client, the stats cache."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio
from starlette.requests import HTTPConnection

from ..settings import Settings
from .config import DashboardConfig
from .hub import Hub
from .stats import StatsCache


@dataclass(frozen=True)
class DashboardState:
    settings: Settings
    config: DashboardConfig
    hub: Hub
    client: redis.asyncio.Redis
    stats: StatsCache


def state_of(connection: HTTPConnection) -> DashboardState:
    state: DashboardState = connection.app.state.dashboard
    return state
