"""`sollol-otel collector` as users start it: a real process, its banner on stderr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
from redis_servers import free_port
from waiting import eventually


def test_collector_command_serves_and_warns_about_an_open_bind_without_leaking_the_password(
    redis_url: str,
) -> None:
    port = free_port()
    env = {**os.environ, "SOLLOL_REDIS_URL": redis_url.replace("redis://", "redis://:hunter2@")}
    env.pop("SOLLOL_COLLECTOR_TOKEN", None)
    command = [sys.executable, "-m", "sollol_otel", "collector", "--host", "0.0.0.0", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:

        def healthz() -> httpx.Response | None:
            assert process.poll() is None, "collector exited"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.TransportError:
                return None

        health = eventually(healthz, timeout=15, what="the collector to start")
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)

    assert health.status_code == 200
    assert "without SOLLOL_COLLECTOR_TOKEN" in stderr
    assert ":***@" in stderr and "hunter2" not in stderr
