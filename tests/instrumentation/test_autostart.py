"""Opt-in dashboard autostart: started detached when nothing answers, never in the router's way."""

from __future__ import annotations

import logging
import socket
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from waiting import eventually

from sollol_otel.access import answers
from sollol_otel.instrumentation.autostart import start_dashboard_if_absent, start_dashboard_if_wanted


@pytest.fixture
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; ended by their pid after it."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def wait_until_answering(port: int) -> bool:
    return eventually(lambda: answers(("127.0.0.1", port), timeout=0.2), timeout=15, what=f"port {port}")


def test_autostart_is_off_unless_asked_for() -> None:
    assert start_dashboard_if_wanted({}) is None


def test_nothing_is_started_when_something_answers_on_the_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert start_dashboard_if_absent("127.0.0.1", port, command=["false"]) is None


def test_the_real_dashboard_is_started_when_nothing_answers(
    free_port: int, redis_url: str, started: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOLLOL_REDIS_URL", redis_url)  # the dashboard inherits the router's environment
    environ = {"SOLLOL_DASHBOARD_AUTOSTART": "true", "SOLLOL_DASHBOARD_PORT": str(free_port)}
    future = start_dashboard_if_wanted(environ)
    assert future is not None
    process = future.result(timeout=5)
    assert process is not None
    started.append(process)
    assert wait_until_answering(free_port), "the dashboard did not come up"
    assert httpx.get(f"http://127.0.0.1:{free_port}/healthz", timeout=5).status_code == 200


def test_a_dashboard_that_cannot_start_is_logged_not_raised(
    free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {"SOLLOL_DASHBOARD_AUTOSTART": "true", "SOLLOL_DASHBOARD_PORT": str(free_port)}
    with caplog.at_level(logging.WARNING, logger="sollol_otel.instrumentation.autostart"):
        future = start_dashboard_if_wanted(environ, command=["/nonexistent/sollol-otel"])
        assert future is not None
        assert isinstance(future.exception(timeout=5), FileNotFoundError)
    assert "could not start the dashboard" in caplog.text


def test_an_unusable_port_skips_autostart_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"SOLLOL_DASHBOARD_AUTOSTART": "true", "SOLLOL_DASHBOARD_PORT": "http"}
    with caplog.at_level(logging.WARNING, logger="sollol_otel.instrumentation.autostart"):
        assert start_dashboard_if_wanted(environ) is None
    assert "SOLLOL_DASHBOARD_PORT='http' is not a port number" in caplog.text
