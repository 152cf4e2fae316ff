"""`sollol-otel demo` from nothing: embedded Redis, dashboard, every event type, clean Ctrl+C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis_servers import answers, free_port
from waiting import eventually

from sollol_otel import EventType
from sollol_otel.demo import runner


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int, dict[str, str]]]:
    """A demo on free ports, with no Redis where it looks and a state directory of its own."""
    redis_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "SOLLOL_REDIS_URL": f"redis://127.0.0.1:{redis_port}",
        "XDG_STATE_HOME": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sollol_otel", "demo", "--port", str(http_port), "--rate", "5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    yield process, redis_port, http_port, env
    if process.poll() is None:
        process.kill()
        process.wait(10)


def answered(condition: Callable[[], bool]) -> Callable[[], bool]:
    """`condition`, counting an HTTP error (the server still starting) as not yet."""

    def check() -> bool:
        try:
            return condition()
        except httpx.HTTPError:
            return False

    return check


def event_types(http_port: int) -> set[str]:
    response = httpx.get(
        f"http://127.0.0.1:{http_port}/api/routing_events", params={"limit": 1000}, timeout=5
    )
    return {event["event_type"] for event in response.json()["events"]}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_the_demo_runs_with_no_redis_and_stops_cleanly_on_ctrl_c(
    demo: tuple[subprocess.Popen[str], int, int, dict[str, str]],
) -> None:
    process, redis_port, http_port, env = demo
    health = f"http://127.0.0.1:{http_port}/healthz"
    redis_up = answered(lambda: httpx.get(health, timeout=2).json()["redis"] == "up")
    eventually(redis_up, 30, 0.25, "the dashboard")
    assert answers(redis_port), "the embedded Redis is not on the configured port"

    every_type = {t.value for t in EventType}
    eventually(answered(lambda: event_types(http_port) >= every_type), 60, 0.25, "every event type")

    tail = subprocess.run(
        [sys.executable, "-m", "sollol_otel", "tail", "--history", "5", "--output", "json"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert tail.returncode == 0, tail.stderr
    assert len(tail.stdout.splitlines()) == 5

    record = json.loads((Path(env["XDG_STATE_HOME"]) / "sollol-otel" / "redis.json").read_text())
    children = [int(pid) for pid in subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()]  # fmt: skip
    assert record["pid"] in children and len(children) == 4  # Redis and three instances

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Demo stopped." in output
    assert not [pid for pid in children if alive(pid)], "a process of the demo was left behind"
    assert not answers(redis_port)
    assert not (Path(env["XDG_STATE_HOME"]) / "sollol-otel" / "redis.json").exists()


def test_the_printed_command_runs_in_a_shell_without_the_virtualenv_on_path() -> None:
    shell = subprocess.run(
        ["sh", "-c", f"{runner.command()} tail --help"],
        env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    assert "--history" in shell.stdout
