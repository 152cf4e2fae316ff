"""Where the indexer runs (the dashboard, by default) and what history says about itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio
from history.harness import index_all, indexing, newest, wait_until
from redis_servers import free_port
from server_process import server_process
from waiting import eventually

from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.history.query import History
from sollol_otel.history.store import stream_folder


def _write(client: redis.Redis, stream: str, count: int) -> str:
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.xadd(stream, {"event": json.dumps({"event_type": "ROUTE_DECISION", "model": "m", "i": i})})
    return str(pipe.execute()[-1].decode())


def _health(url: str) -> tuple[int, dict[str, Any] | None]:
    """The status code and the history indexer's report, one of the body's `components`."""
    response = httpx.get(url + "/healthz")
    return response.status_code, response.json().get("components", {}).get("history")


def test_the_dashboard_runs_the_indexer_and_reports_it_without_failing_health(
    redis_client: redis.Redis, stream: str, tmp_path: Path
) -> None:
    last = _write(redis_client, stream, 50)
    with server_process("dashboard") as dashboard:
        eventually(lambda: (m := newest(tmp_path / "history", stream)) is not None and m.last_id == last, 30)
        status, report = _health(dashboard.url)
        assert status == 200
        assert report is not None and report["state"] == "indexing"


def test_a_dashboard_told_not_to_index_leaves_history_alone(
    redis_client: redis.Redis, stream: str, tmp_path: Path
) -> None:
    _write(redis_client, stream, 5)
    with server_process("dashboard", "--no-indexer") as dashboard:
        assert _health(dashboard.url) == (200, None)
    assert not (tmp_path / "history").exists()


def test_a_dashboard_started_before_redis_says_its_indexer_waits_for_it(stream: str) -> None:
    with server_process(
        "dashboard", env={"SOLLOL_REDIS_URL": f"redis://127.0.0.1:{free_port()}"}
    ) as dashboard:
        report = eventually(lambda: _health(dashboard.url)[1], 20)
        assert report["state"] == "redis_down"


async def test_status_warns_when_the_stream_would_trim_entries_before_they_are_indexed(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    _write(redis_client, stream, 3000)  # 3,000 in the last ten minutes: 5 a second
    await index_all(redis_url, stream, root)
    history = await History.open(redis.asyncio.Redis.from_url(redis_url), stream, root)
    assert history is not None
    await history.stats(EventFilter(), TimeRange(), now_ms=int(time.time() * 1000))
    assert history.status()["trim_warning"] is None  # it keeps 3,000: minutes at this rate
    redis_client.xtrim(stream, maxlen=10, approximate=False)
    await history.stats(EventFilter(), TimeRange(), now_ms=int(time.time() * 1000))
    assert "SOLLOL_ROUTING_STREAM_MAXLEN" in history.status()["trim_warning"]


async def test_status_says_what_history_holds_and_costs(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    _write(redis_client, stream, 200)
    await index_all(redis_url, stream, root)
    _write(redis_client, stream, 7)
    history = await History.open(redis.asyncio.Redis.from_url(redis_url), stream, root)
    assert history is not None
    await history.stats(EventFilter(), TimeRange(), now_ms=int(time.time() * 1000) + 1000)
    status = history.status()
    assert (status["events"], status["unindexed"], status["segments"]) == (200, 7, 1)
    assert status["bytes"] == sum(p.stat().st_size for p in root.rglob("*.parquet"))
    assert status["bytes_per_day"] > 0 and status["start_ms"] is not None


async def test_readers_on_the_indexers_host_find_its_folder_through_the_lease(
    redis_url: str, redis_client: redis.Redis, stream: str, tmp_path: Path
) -> None:
    root = tmp_path / "not-the-configured-one"
    _write(redis_client, stream, 20)
    async with indexing(redis_url, stream, root):
        await wait_until(lambda: newest(root, stream) is not None)
        history = await History.open(redis.asyncio.Redis.from_url(redis_url), stream)  # no folder given
        assert history is not None and history.store.folder == stream_folder(root, stream)


def test_each_stream_key_gets_a_folder_of_its_own_inside_the_root(tmp_path: Path) -> None:
    names = ["sollol:routing_stream", "a/b", "..", ".hidden", "a%2Fb"]
    folders = [stream_folder(tmp_path, name) for name in names]
    assert all(folder.parent == tmp_path and folder.name not in (".", "..") for folder in folders)
    assert len(set(folders)) == len(names)


def test_recording_and_starting_the_readers_never_load_duckdb() -> None:
    code = (
        "import sys, sollol_otel\n"
        "sollol_otel.get_routing_logger()\n"
        "recording = {m for m in sys.modules if m.startswith('sollol_otel.history')}\n"
        "import sollol_otel.web.app, sollol_otel.cli.main, sollol_otel.history.query\n"
        "print(sorted(recording), 'duckdb' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "False"]
