"""The receiver under real uvicorn on a free port, writing to this test's Redis keys."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import uvicorn
from receiver.receiver_harness import RunningReceiver
from redis_servers import free_port
from waiting import eventually

from sollol_otel.receiver import ReceiverConfig, create_app
from sollol_otel.settings import Settings


@pytest.fixture
def start_receiver(keys: tuple[str, str]) -> Iterator[Callable[..., RunningReceiver]]:
    """`start_receiver(config)` → a receiver serving until the test ends (settings from the environment)."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(config: ReceiverConfig | None = None) -> RunningReceiver:
        app = create_app(Settings.from_env(), config)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        eventually(lambda: server.started or not thread.is_alive(), what="the receiver to start")
        assert server.started, "receiver did not start"
        return RunningReceiver(f"http://127.0.0.1:{port}", app)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def receiver(start_receiver: Callable[..., RunningReceiver]) -> RunningReceiver:
    return start_receiver()


@pytest.fixture
def stream_events(redis_client: redis.Redis, keys: tuple[str, str]) -> Callable[[], list[dict[str, Any]]]:
    """The JSON events in this test's stream, oldest first."""

    def read() -> list[dict[str, Any]]:
        return [json.loads(fields[b"event"]) for _, fields in redis_client.xrange(keys[0])]

    return read
