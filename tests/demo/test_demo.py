"""`sollol-otel demo` from nothing: embedded Redis, dashboard, every event type, clean Ctrl+C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis_servers import RedisServer, answers, free_port
from waiting import eventually

from sollol_otel import EventType
from sollol_otel.demo import runner
from sollol_otel.settings import ROUTING_STREAM
from sollol_otel.wire import Skipped, decode

DEFAULT_STREAM = ROUTING_STREAM.default


Demo = tuple[subprocess.Popen[str], int, int, dict[str, str]]


@contextmanager
def running_demo(state: Path, redis_port: int, *args: str) -> Iterator[Demo]:
    """A demo on a free port, looking for Redis on `redis_port`, with a state directory of its own."""
    http_port = free_port()
    env = {**os.environ, "SOLLOL_REDIS_URL": f"redis://127.0.0.1:{redis_port}", "XDG_STATE_HOME": str(state)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sollol_otel", "demo", "--port", str(http_port), "--rate", "5", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield process, redis_port, http_port, env
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """A demo with no Redis where it looks."""
    with running_demo(tmp_path, free_port()) as started:
        yield started


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
    demo: Demo,
) -> None:
    process, redis_port, http_port, env = demo
    dashboard_up(http_port)
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


def dashboard_up(http_port: int) -> None:
    health = f"http://127.0.0.1:{http_port}/healthz"
    eventually(
        answered(lambda: httpx.get(health, timeout=2).json()["redis"] == "up"), 30, 0.25, "the dashboard"
    )


def demo_events(client: redis.Redis, stream: str) -> list[dict[str, Any]]:
    events = []
    for _, fields in client.xrange(stream):
        event = decode(fields)
        assert not isinstance(event, Skipped), event
        events.append(dict(event.fields))
    return events


def longest_chain(client: redis.Redis, stream: str) -> list[dict[str, Any]]:
    """The events of the trace with the most events in the stream."""
    chains: dict[str, list[dict[str, Any]]] = {}
    for event in demo_events(client, stream):
        if event.get("trace_id"):
            chains.setdefault(event["trace_id"], []).append(event)
    return max(chains.values(), key=len, default=[])


# Inside a full suite the demo has, rarely, stayed in uvicorn's shutdown after Ctrl+C past 30 s;
# never alone. Rerun until the cause is found (closing note of issue 19).
@pytest.mark.flaky(reruns=2)
def test_in_a_redis_it_did_not_start_the_demo_writes_only_its_own_keys_and_removes_them_on_exit(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    theirs = redis.Redis.from_url(private_redis.url)
    theirs.xadd(DEFAULT_STREAM, {"event": "a real router's event"})
    with running_demo(tmp_path, private_redis.port) as (process, _, http_port, _):
        dashboard_up(http_port)
        eventually(lambda: theirs.xlen(runner.DEMO_STREAM) > 10, 30, 0.25, "simulated events")
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert theirs.xlen(DEFAULT_STREAM) == 1
    assert f"own stream {runner.DEMO_STREAM}" in output
    assert f"--stream {runner.DEMO_STREAM}" in output  # the printed tail commands read it
    where = f"{runner.DEMO_STREAM} at {private_redis.url}"
    assert f"every decision goes into the Redis stream {where}" in output
    assert f"then {where} is removed (--keep keeps it)" in output
    assert f"Removed the demo's stream {where}" in output
    assert not theirs.exists(runner.DEMO_STREAM)


# Inside a full suite the demo has, rarely, stayed in uvicorn's shutdown after Ctrl+C past 30 s;
# never alone. Rerun until the cause is found (closing note of issue 19).
@pytest.mark.flaky(reruns=2)
def test_with_keep_the_demo_leaves_its_stream_and_says_so(tmp_path: Path, private_redis: RedisServer) -> None:
    theirs = redis.Redis.from_url(private_redis.url)
    with running_demo(tmp_path, private_redis.port, "--keep") as (process, _, http_port, _):
        dashboard_up(http_port)
        eventually(lambda: theirs.xlen(runner.DEMO_STREAM) > 10, 30, 0.25, "simulated events")
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert f"{runner.DEMO_STREAM} at {private_redis.url} stays (--keep)." in output
    assert theirs.xlen(runner.DEMO_STREAM) > 10


def test_the_demos_requests_are_chains_that_tail_finds_by_trace_id(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    theirs = redis.Redis.from_url(private_redis.url)
    with running_demo(tmp_path, private_redis.port) as (process, _, http_port, env):
        dashboard_up(http_port)
        eventually(lambda: len(longest_chain(theirs, runner.DEMO_STREAM)) >= 5, 60, 0.5, "a request's chain")
        chain = longest_chain(theirs, runner.DEMO_STREAM)
        kinds = [event["event_type"] for event in chain]
        assert kinds[:2] == ["TASK_QUEUED", "TASK_START"] and {"ROUTE_DECISION", "CACHE_HIT"} & set(kinds)
        tail = subprocess.run(
            [sys.executable, "-m", "sollol_otel", "tail", "--history", "50", "--stream", runner.DEMO_STREAM,
             "--trace-id", chain[0]["trace_id"], "-o", "json"],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "--trace-id TRACE_ID" in output  # the banner says how to look
    shown = [json.loads(line) for line in tail.stdout.splitlines()]
    assert {event["trace_id"] for event in shown} == {chain[0]["trace_id"]}
    ids = [event["event_id"] for event in chain]
    assert [event["event_id"] for event in shown][: len(ids)] == ids  # the request may have gone on


# Inside a full suite the demo has, rarely, stayed in uvicorn's shutdown after Ctrl+C past 30 s;
# never alone. Rerun until the cause is found (closing note of issue 19).
@pytest.mark.flaky(reruns=2)
def test_with_redis_url_the_demo_writes_where_it_was_told(tmp_path: Path, private_redis: RedisServer) -> None:
    theirs = redis.Redis.from_url(private_redis.url)
    with running_demo(tmp_path, free_port(), "--redis-url", private_redis.url) as (process, _, http_port, _):
        dashboard_up(http_port)
        eventually(lambda: theirs.xlen(DEFAULT_STREAM) > 10, 30, 0.25, "simulated events")
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert not theirs.exists(runner.DEMO_STREAM)
    assert f"into {DEFAULT_STREAM}" in output and "(--redis-url)" in output
    assert f"Removed the demo's stream {DEFAULT_STREAM} at {private_redis.url}" in output  # it made it


# Inside a full suite the demo has, rarely, stayed in uvicorn's shutdown after Ctrl+C past 30 s;
# never alone. Rerun until the cause is found (closing note of issue 19).
@pytest.mark.flaky(reruns=2)
def test_a_stream_that_was_there_before_the_demo_stays(tmp_path: Path, private_redis: RedisServer) -> None:
    theirs = redis.Redis.from_url(private_redis.url)
    theirs.xadd(DEFAULT_STREAM, {"event": "a real router's event"})
    with running_demo(tmp_path, free_port(), "--redis-url", private_redis.url) as (process, _, http_port, _):
        dashboard_up(http_port)
        eventually(lambda: theirs.xlen(DEFAULT_STREAM) > 10, 30, 0.25, "simulated events")
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert f"{DEFAULT_STREAM} at {private_redis.url} stays: it was there before the demo." in output
    assert theirs.xlen(DEFAULT_STREAM) > 10
