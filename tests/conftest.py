"""Shared fixtures: a real Redis for every test, with keys of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from history_events import Seeded, seed
from redis_servers import BINARY_ENV, RedisServer, answers

from sollol_otel.history.lease import lease_keys

#: Where the machine's shared Redis answers; point it at a free port to try the no-Redis path.
SHARED_REDIS_PORT = int(os.environ.get("SOLLOL_TEST_SHARED_REDIS_PORT", "6379"))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The machine's Redis when one runs (and no other binary is asked for), else a private server
    for the whole session."""
    if answers(SHARED_REDIS_PORT) and not os.environ.get(BINARY_ENV):
        yield f"redis://127.0.0.1:{SHARED_REDIS_PORT}"
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session", autouse=True)
def _history_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Dashboards run the history indexer: in tests (and the processes they start) its files go to
    a temporary folder, never the user's data folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOLLOL_HISTORY_DIR", str(tmp_path_factory.mktemp("history")))
        yield


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A stream and channel no other test or run uses, set in the environment (with a history folder
    of the test's own, for the dashboard's indexer), deleted after."""
    suffix = uuid.uuid4().hex[:12]
    stream, channel = f"test:{suffix}:stream", f"test:{suffix}:channel"
    monkeypatch.setenv("SOLLOL_REDIS_URL", redis_url)
    monkeypatch.setenv("SOLLOL_ROUTING_STREAM", stream)
    monkeypatch.setenv("SOLLOL_ROUTING_CHANNEL", channel)
    monkeypatch.setenv("SOLLOL_HISTORY_DIR", str(tmp_path / "history"))
    yield stream, channel
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(stream, *lease_keys(stream))
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _skip_without_redis7(request: pytest.FixtureRequest) -> None:
    """Tests marked `redis7` need what Redis 6.2 lacks: `entries-added`, the exact count of missed events."""
    if request.node.get_closest_marker("redis7") is None:
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        major = int(str(client.info("server")["redis_version"]).split(".")[0])
    finally:
        client.close()
    if major < 7:
        pytest.skip("Redis 6.2 does not count entries-added: gaps are reported without a count")


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A server of this test's own, to kill, restart or hang."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-screenshot",
        action="store_true",
        help="save the dashboard screenshot the page tests take to docs/dashboard.png (the README shows it)",
    )


@pytest.fixture
def seeded(
    redis_client: redis.Redis,
    redis_url: str,
    keys: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Seeded:
    """A stream whose older events are in a real history only (history_events.seed), found by
    every reader through SOLLOL_HISTORY_DIR."""
    monkeypatch.setenv("SOLLOL_HISTORY_DIR", str(tmp_path))
    return seed(redis_client, redis_url, keys[0], tmp_path)
