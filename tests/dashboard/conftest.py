"""Fixtures: a dashboard server reading the test's own stream from the real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from dashboard.dashboard_harness import DashboardServer, running_dashboards

from sollol_otel.settings import Settings

ServerFactory = Callable[..., DashboardServer]


@pytest.fixture
def start_dashboard(keys: tuple[str, str]) -> Iterator[ServerFactory]:
    """Starts dashboards with given options (token, queue size, ...) and stops them after the test."""
    with running_dashboards() as start:
        yield lambda settings=None, **options: start(settings or Settings.from_env(), **options)


@pytest.fixture
def dashboard(start_dashboard: ServerFactory) -> DashboardServer:
    return start_dashboard()
