"""The embedded Redis: started where none runs, reused by a second demo, never left stray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_servers import free_port
from waiting import eventually

from sollol_otel.access import redis_answers
from sollol_otel.demo import embedded_redis


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def started() -> Iterator[embedded_redis.EmbeddedRedis]:
    server = embedded_redis.start(f"redis://127.0.0.1:{free_port()}")
    yield server
    server.stop()


def test_it_starts_on_the_preferred_port_so_default_clients_find_it() -> None:
    port = free_port()
    server = embedded_redis.start(f"redis://127.0.0.1:{port}")
    try:
        assert server.owner and server.url == f"redis://127.0.0.1:{port}"
        assert redis_answers(server.url)
    finally:
        server.stop()
    assert not redis_answers(server.url)


def test_a_second_demo_reuses_the_running_server_without_owning_it(
    started: embedded_redis.EmbeddedRedis,
) -> None:
    second = embedded_redis.start(f"redis://127.0.0.1:{free_port()}")
    assert (second.url, second.owner) == (started.url, False)
    second.stop()
    assert redis_answers(started.url), "the second demo stopped a server it does not own"


def test_a_server_whose_demo_died_is_replaced(
    started: embedded_redis.EmbeddedRedis, state_home: Path
) -> None:
    record_path = state_home / "sollol-otel" / "redis.json"
    record = json.loads(record_path.read_text())
    record["owner_pid"] = _dead_pid()
    record_path.write_text(json.dumps(record))
    replacement = embedded_redis.start(f"redis://127.0.0.1:{free_port()}")
    try:
        assert replacement.owner and replacement.pid != started.pid
        assert started.process is not None and started.process.wait(5) is not None
    finally:
        replacement.stop()


def test_the_server_dies_with_its_demo_even_on_sigkill(state_home: Path) -> None:
    port = free_port()
    script = (
        "import sys, time\n"
        "from sollol_otel.demo import embedded_redis\n"
        f"embedded_redis.start('redis://127.0.0.1:{port}')\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    assert owner.stdout is not None and owner.stdout.readline().strip() == "up"
    assert redis_answers(f"redis://127.0.0.1:{port}")
    owner.send_signal(signal.SIGKILL)
    owner.wait(5)
    eventually(lambda: not redis_answers(f"redis://127.0.0.1:{port}"), timeout=5)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
