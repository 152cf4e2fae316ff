"""Fixtures for the scale-out tests: deployments, stream names, and the real parts to run against them."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
from cli.tail_cli import Running, environment
from scale.deployments import ClusterDeployment, SentinelDeployment, TlsRedis
from scale.parts import Receiver
from web.dashboard_harness import DashboardServer, running_dashboards

import sollol_otel
from sollol_otel.settings import Settings


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A stream and channel of this test's own, under `sollol:` (the ACL user's key pattern)."""
    suffix = uuid.uuid4().hex[:12]
    stream, channel = f"sollol:{suffix}:stream", f"sollol:{suffix}:channel"
    monkeypatch.setenv("SOLLOL_ROUTING_STREAM", stream)
    monkeypatch.setenv("SOLLOL_ROUTING_CHANNEL", channel)
    return stream, channel


@pytest.fixture
def recording(names: tuple[str, str]) -> Iterator[Callable[..., sollol_otel.RoutingLogger]]:
    """`recording(redis_url=...)` → the real recording pipeline, shut down after the test."""
    yield sollol_otel.configure
    sollol_otel.shutdown(timeout=2.0)


@pytest.fixture
def command(names: tuple[str, str]) -> Iterator[Callable[..., Running]]:
    """`command(url, "tail", ...)` → the real `sollol-otel` CLI against `url`, stopped after the test."""
    started: list[Running] = []

    def start(url: str, *args: str) -> Running:
        running = Running(*args, env=environment(SOLLOL_REDIS_URL=url))
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.terminate()  # lets `dashboard --workers` stop its worker processes too
            with contextlib.suppress(subprocess.TimeoutExpired):
                running.process.wait(10)
        running.close()


@pytest.fixture
def dashboard(names: tuple[str, str]) -> Iterator[Callable[[str], DashboardServer]]:
    """`dashboard(url)` → the dashboard app under uvicorn, reading this test's stream at `url`."""
    with running_dashboards() as start:
        yield lambda url: start(Settings.from_env().with_overrides(redis_url=url))


@pytest.fixture
def receiver(command: Callable[..., Running]) -> Callable[[str], Receiver]:
    """`receiver(url)` → `sollol-otel receiver` writing this test's stream at `url`."""
    return lambda url: Receiver.start(command, url)


@pytest.fixture
def sentinel() -> Iterator[SentinelDeployment]:
    """A deployment of the test's own: failover tests leave it changed."""
    with contextlib.closing(SentinelDeployment()) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterDeployment]:
    with contextlib.closing(ClusterDeployment()) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsRedis]:
    with contextlib.closing(TlsRedis()) as server:
        yield server
