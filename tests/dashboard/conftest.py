"""Fixtures: a dashboard server reading the test's own stream from the real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from dashboard.dashboard_harness import DashboardServer

from sollol_otel.settings import Settings
from sollol_otel.web.config import DashboardConfig

ServerFactory = Callable[..., DashboardServer]


@pytest.fixture
def start_dashboard(keys: tuple[str, str]) -> Iterator[ServerFactory]:
    """Starts dashboards with given options (token, queue size, ...) and stops them after the test."""
    servers: list[DashboardServer] = []

    def start(settings: Settings | None = None, **options: object) -> DashboardServer:
        server = DashboardServer(settings or Settings.from_env(), DashboardConfig(**options))  # type: ignore[arg-type]
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def dashboard(start_dashboard: ServerFactory) -> DashboardServer:
    return start_dashboard()
