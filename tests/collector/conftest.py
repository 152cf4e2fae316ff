"""A router process's own Prometheus endpoint (SOLLOL_METRICS_PORT), recording to this test's keys."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from redis_servers import free_port

import sollol_otel

from .prometheus_server import Prometheus, running_prometheus


@pytest.fixture
def metrics_port(keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """SOLLOL_METRICS_PORT for this test (a free port); recording shut down after it."""
    port = free_port()
    monkeypatch.setenv("SOLLOL_METRICS_PORT", str(port))
    yield port
    sollol_otel.shutdown(timeout=2.0)


def scrape(port: int) -> str:
    """What Prometheus reads from the endpoint on `port`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text: str = answer.read().decode()
    return text


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """One real Prometheus for the session; each test adds the targets it scrapes."""
    with running_prometheus(tmp_path_factory.mktemp("prometheus")) as server:
        yield server
