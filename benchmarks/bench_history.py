"""History answers (issue 18's targets): /api/stats and /api/timeline over two hours of N SOLLOL-shaped
events with trace ids, `sollol-otel stats` wall time, and the indexer at 5,000 events/s.

    .venv/bin/python benchmarks/bench_history.py --sizes 10000 1000000 10000000 --runs 15 \\
        --before /work/wt/before
    .venv/bin/python benchmarks/bench_history.py --smoke        # small sizes: checks that it runs

Data: N events over the two hours ending a minute ago, written as Parquet segments through the
engine's own bulk import (history.bulk: segments.row_of for every event, segments.write_segment
per 1,000,000 rows, one committed manifest), so 10,000,000 events take minutes, not 10,000,000
XADDs. A real `sollol-otel dashboard --no-indexer` answers over them; every request
carries a parameter of its own, so none is served from the result cache. Targets: p50 ≤ 100 ms
over 1,000,000, ≤ 1 s over 10,000,000, cost(1M)/cost(10k) ≤ 10; `stats` over 1,000,000 ≤ 1 s wall.

Before (`--before DIR`: a checkout of the code before history, with its .venv): the same requests
to its dashboard over a stream of --before-events entries (it counted at most 100,000).

Indexer: a writer XADDs --index-rate events/s for --index-seconds while `sollol-otel indexer` runs;
reported: its CPU (≤ 1 core), how long it takes to catch up once the writer stops, and the bytes
per event of what it wrote (≤ 100), besides the bytes per event of the compacted N-event history.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

from sollol_otel.events import EventType, RoutingEvent
from sollol_otel.history.bulk import import_entries
from sollol_otel.history.store import Store, stream_folder
from sollol_otel.redis.entries import StreamEntry
from sollol_otel.wire import decode

TWO_HOURS_MS = 2 * 3600 * 1000
TYPES = [t.value for t in EventType]
MODELS = ["llama3.2:3b", "llama3.1:70b", "codellama:13b", "mistral:7b", "qwen2.5:14b", "phi3:mini"]
REASONS = ["sufficient_resources (estimated 2.5GB)", "ollama_error: Out of memory", "timeout", "round_robin"]
#: Distinct event shapes; each event is one of them with its own id, time and trace.
SHAPES = 4096
#: Rows per segment file: compaction merges a busy day into files of this order.
SEGMENT_ROWS = 1_000_000
#: Trace and span ids are random, as real ones are (seeded: every run writes the same history).
_IDS = random.Random(18)


def sollol_event(n: int) -> dict[str, Any]:
    """The nth SOLLOL-shaped event: 12 types, 6 models, 3 backends, 200 nodes, 16 instances."""
    return {
        "timestamp": "2026-11-27T12:03:45.123456",
        "instance_id": f"host{n % 16}_4{n % 16}_a1b2c3d4",
        "hostname": f"host{n % 16}",
        "pid": 40 + n % 16,
        "event_type": TYPES[n % len(TYPES)],
        "model": MODELS[n % len(MODELS)],
        "backend": ("ollama", "rpc", "ray")[n % 3],
        "node_url": f"http://10.0.{n % 200 // 100}.{n % 100}:11434",
        "reason": REASONS[n % len(REASONS)],
        "parameter_count": 7,
        "trace_id": f"{_IDS.getrandbits(128):032x}",
        "span_id": f"{_IDS.getrandbits(64):016x}",
    }


def id_of(n: int, count: int, start_ms: int) -> tuple[int, int]:
    """Event n of `count` over two hours from `start_ms`: (ms, seq), strictly increasing."""
    return start_ms + n * TWO_HOURS_MS // count, n


@functools.cache
def shapes() -> list[RoutingEvent]:
    """Each shape decoded once, as the stream reader decodes it."""
    decoded = [decode({"event": json.dumps(sollol_event(n))}) for n in range(SHAPES)]
    return [event for event in decoded if isinstance(event, RoutingEvent)]


def entries(count: int, start_ms: int) -> Iterator[StreamEntry]:
    """The N events: each shape with the event's own id, trace and span."""
    templates = shapes()
    for n in range(count):
        shape = templates[n % len(templates)]
        ids = {"trace_id": f"{_IDS.getrandbits(128):032x}", "span_id": f"{_IDS.getrandbits(64):016x}"}
        ms, seq = id_of(n, count, start_ms)
        yield StreamEntry(f"{ms}-{seq}", RoutingEvent(shape.event_type, shape.time, {**shape.fields, **ids}))


def write_history(root: Path, stream: str, count: int, start_ms: int) -> dict[str, Any]:
    """N events written through the engine's bulk import (its writer, in segments as compaction
    leaves them); what they take on disk."""
    manifest = import_entries(root, stream, entries(count, start_ms), segment_rows=SEGMENT_ROWS)
    return {
        "files": len(manifest.segments),
        "bytes": manifest.bytes,
        "bytes_per_event": round(manifest.bytes / count, 1),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Dashboard:
    """A real dashboard process (`python` from `venv`, code from `cwd`) answering for `stream`."""

    def __init__(self, python: str, cwd: str, env: dict[str, str], extra: list[str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [python, "-m", "sollol_otel", "dashboard", "--port", str(self.port), *extra],
            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("dashboard did not start")
            time.sleep(0.1)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def queries(since: str, until: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    for q in (None, "memory"):
        extra = {"q": q} if q else {}
        yield f"stats{' q' if q else ''}", "/api/stats", {"since": since, "until": until, **extra}
        for by in ("event_type", "node"):
            params = {"since": since, "until": until, "bucket": "1m", "by": by, **extra}
            yield f"timeline by {by}{' q' if q else ''}", "/api/timeline", params


def p50_ms(base: str, path: str, params: dict[str, str], runs: int) -> float:
    """Median of `runs` uncached answers (each asks with a parameter of its own), after one warm-up."""
    times = []
    with httpx.Client(timeout=600) as client:
        for run in range(runs + 1):
            started = time.perf_counter()
            response = client.get(f"{base}{path}", params={**params, "nocache": uuid.uuid4().hex})
            response.raise_for_status()
            if run:
                times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def answers(dashboard: Dashboard, start_ms: int, runs: int) -> dict[str, float]:
    since, until = iso(start_ms), iso(start_ms + TWO_HOURS_MS)
    return {name: p50_ms(dashboard.base, path, params, runs) for name, path, params in queries(since, until)}


def stats_wall(env: dict[str, str], runs: int) -> float:
    """`sollol-otel stats` as installed: its bytecode compiled first, as `pip install` compiles a
    package's (with PYTHONDONTWRITEBYTECODE set, every run would compile it again)."""
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "sollol_otel", quiet=1)
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sollol_otel", "stats", "-o", "json"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def fill_stream(client: redis.Redis, stream: str, count: int, start_ms: int) -> None:
    for first in range(0, count, 10_000):
        pipe = client.pipeline(transaction=False)
        for n in range(first, min(count, first + 10_000)):
            ms, seq = id_of(n, count, start_ms)
            pipe.xadd(stream, {"event": json.dumps(sollol_event(n))}, id=f"{ms}-{seq}")
        pipe.execute()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def indexer_run(redis_url: str, rate: int, seconds: float) -> dict[str, Any]:
    """The real indexer following a stream written at `rate` events/s."""
    stream = f"bench:history:index:{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="bench-history-index-"))
    env = {**os.environ, "SOLLOL_ROUTING_STREAM": stream, "SOLLOL_HISTORY_DIR": str(root),
           "SOLLOL_REDIS_URL": redis_url, "SOLLOL_ROUTING_STREAM_MAXLEN": str(rate * 600)}  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    indexer = subprocess.Popen([sys.executable, "-m", "sollol_otel", "indexer"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    written = 0
    stop = threading.Event()

    def write() -> None:
        nonlocal written
        started = time.perf_counter()
        while not stop.is_set():
            due = int((time.perf_counter() - started) * rate)
            pipe = client.pipeline(transaction=False)
            for n in range(written, due):
                pipe.xadd(stream, {"event": json.dumps(sollol_event(n))})
            pipe.execute()
            written = due
            time.sleep(0.01)

    try:
        time.sleep(2)  # the indexer starts and takes its lease
        cpu_before, wall_before = cpu_seconds(indexer.pid), time.perf_counter()
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(seconds)
        stop.set()
        writer.join()
        cpu = cpu_seconds(indexer.pid) - cpu_before
        wall = time.perf_counter() - wall_before
        last = client.xinfo_stream(stream)["last-generated-id"].decode()
        store = Store(stream_folder(root, stream))
        stopped = time.perf_counter()
        while (manifest := store.newest()) is None or manifest.last_id != last:
            if time.perf_counter() - stopped > 120:
                raise RuntimeError("the indexer did not catch up in 120 s")
            time.sleep(0.05)
        return {
            "events": written,
            "cores": round(cpu / wall, 3),
            "catch_up_seconds": round(time.perf_counter() - stopped, 2),
            "segments": len(manifest.segments),
            "bytes_per_event": round(manifest.bytes / max(manifest.events, 1), 1),
        }
    finally:
        indexer.terminate()
        indexer.wait(20)
        client.delete(stream)
        client.close()
        shutil.rmtree(root, ignore_errors=True)


def stream_env(stream: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "SOLLOL_ROUTING_STREAM": stream, "SOLLOL_ROUTING_CHANNEL": stream + ":channel",
            "SOLLOL_REDIS_URL": redis_url, **extra}  # fmt: skip


def measure_history(count: int, args: argparse.Namespace, start_ms: int) -> dict[str, Any]:
    """This code: the dashboard and `stats` over `count` events in the history."""
    stream = f"bench:history:{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="bench-history-"))
    env = stream_env(stream, args.redis_url, SOLLOL_HISTORY_DIR=str(root))
    try:
        began = time.perf_counter()
        disk = write_history(root, stream, count, start_ms)
        disk["generated_in_seconds"] = round(time.perf_counter() - began, 1)
        print(f"{count} events: {disk}", flush=True)
        dashboard = Dashboard(sys.executable, str(Path(__file__).resolve().parents[1]), env, ["--no-indexer"])
        try:
            row = {"disk": disk, "p50_ms": answers(dashboard, start_ms, args.runs)}
        finally:
            dashboard.close()
        row["stats_command_seconds"] = round(stats_wall(env, max(3, args.runs // 3)), 3)
        print(json.dumps(row), flush=True)
        return row
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure_before(args: argparse.Namespace, client: redis.Redis, start_ms: int) -> dict[str, Any]:
    """The code before history: its dashboard over a stream of --before-events entries."""
    stream = f"bench:history:before:{uuid.uuid4().hex[:8]}"
    try:
        fill_stream(client, stream, args.before_events, start_ms)
        env = stream_env(stream, args.redis_url)
        dashboard = Dashboard(f"{args.before}/.venv/bin/python", args.before, env, [])
        try:
            return {"p50_ms": answers(dashboard, start_ms, args.runs)}
        finally:
            dashboard.close()
    finally:
        client.delete(stream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--before", help="a checkout of the code before history, with its .venv")
    parser.add_argument("--before-events", type=int, default=100_000)
    parser.add_argument("--index-rate", type=int, default=5000)
    parser.add_argument("--index-seconds", type=float, default=60.0)
    parser.add_argument(
        "--smoke", action="store_true", help="sizes 2,000 and 20,000, 3 runs, a short indexer run"
    )
    parser.add_argument("--redis-url", default=os.environ.get("SOLLOL_REDIS_URL", "redis://127.0.0.1:6379"))
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.runs, args.index_rate, args.index_seconds = [2000, 20_000], 3, 500, 5.0
        args.before_events = min(args.before_events, 20_000)
    client = redis.Redis.from_url(args.redis_url)
    start_ms = int(client.time()[0]) * 1000 - TWO_HOURS_MS - 60_000
    results: dict[str, Any] = {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()}"
    }
    for count in args.sizes:
        results[str(count)] = measure_history(count, args, start_ms)
    if args.before:
        results[f"before ({args.before_events} in the stream)"] = measure_before(args, client, start_ms)
    results["indexer"] = indexer_run(args.redis_url, args.index_rate, args.index_seconds)
    sizes = [str(s) for s in args.sizes]
    if len(sizes) >= 2:
        small, large = results[sizes[0]]["p50_ms"], results[sizes[1]]["p50_ms"]
        results[f"cost({sizes[1]})/cost({sizes[0]})"] = {k: round(large[k] / small[k], 2) for k in small}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
