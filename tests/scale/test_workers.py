"""`sollol-otel dashboard --workers N`: N processes on one port, each reading the stream itself.

A client's reconnect may reach any of them; resuming from its last id must give the same
events, exactly once, whichever one answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import redis
from cli.tail_cli import Running
from redis_servers import free_port
from waiting import eventually
from web.dashboard_harness import write

#: Reconnects tried until both workers have served one (which worker accepts is the kernel's choice).
ATTEMPTS = 60


def resume(url: str, last_event_id: str) -> tuple[int, list[str]]:
    """One SSE connection resuming after `last_event_id`: the worker's pid and the reasons sent."""
    worker, sent = 0, []
    with httpx.stream(
        "GET", f"{url}/sse/routing_events", headers={"Last-Event-ID": last_event_id}, timeout=10
    ) as response:
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            message = json.loads(line[6:])
            if message["type"] == "connected":
                worker = message["worker"]
            elif message["type"] == "routing_event":
                sent.append(message["reason"])
            elif message["type"] == "caught_up":
                return worker, sent
    raise AssertionError("the feed ended before catching up")


def test_a_feed_resumed_on_either_worker_continues_exactly_after_its_last_id(
    redis_url: str, names: tuple[str, str], command: Callable[..., Running]
) -> None:
    ids = write(redis.Redis.from_url(redis_url), names[0], 20)
    port = free_port()
    server = command(redis_url, "dashboard", "--workers", "2", "--port", str(port))
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    eventually(healthy, timeout=60, what="the dashboard's workers to answer")
    expected = [f"sufficient_resources #{n}" for n in range(10, 20)]
    workers: set[int] = set()
    for _ in range(ATTEMPTS):
        worker, sent = resume(url, ids[9])
        assert sent == expected, (worker, sent)
        workers.add(worker)
        if len(workers) == 2:
            break
    assert len(workers) == 2, f"every reconnect reached the same worker: {workers}"
    assert server.interrupt() == 0  # Ctrl+C stops the workers and the supervisor
