"""What every request handler shares: settings, options, the hub, a Redis client, the result cache,
the live-feed limit."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from sollol_otel.diagnostics import Component
from sollol_otel.redis.client import LazyClient
from sollol_otel.settings import Settings
from sollol_otel.web.config import DashboardConfig
from sollol_otel.web.counts import ResultCache
from sollol_otel.web.hub import Hub

log = logging.getLogger(__name__)


class FeedLimit:
    """Live feeds (WebSocket and SSE) served at once; past `maximum` new ones are refused with 503,
    the first refusal said in the log, the rest counted."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.active = 0
        self.refused = 0

    def take(self) -> bool:
        if self.active >= self.maximum:
            self.refused += 1
            if self.refused == 1:
                log.warning(
                    "refusing live feeds past %d at once (SOLLOL_DASHBOARD_MAX_CLIENTS)", self.maximum
                )
            return False
        self.active += 1
        return True

    def give_back(self) -> None:
        self.active -= 1


@dataclass(frozen=True)
class DashboardState:
    settings: Settings
    config: DashboardConfig
    hub: Hub
    client: LazyClient
    cache: ResultCache
    feeds: FeedLimit
    #: Parts that report their state in /healthz's body without failing the check: add one as
    #: `state.components["indexer"] = indexer` (anything with `status() -> dict`, see `Component`).
    components: dict[str, Component] = field(default_factory=dict)


def state_of(connection: HTTPConnection) -> DashboardState:
    state: DashboardState = connection.app.state.dashboard
    return state
