"""The history engine alone: disk cost, the indexer keeping up, and History's query times.

    python benchmarks/bench_history_engine.py query --events 1000000 [--runs 7]
    python benchmarks/bench_history_engine.py query --events 10000
    python benchmarks/bench_history_engine.py ingest [--rate 5000] [--seconds 30]

`query` writes N SOLLOL-shaped events (our bridge's shape: trace, span and event ids; 8 nodes;
6 event types) over two hours straight into segments through the engine's own writer, then times
`History.stats` (every dimension), `History.timeline` (1-minute buckets by type and by node) and
`History.page` (100 events, newest and an hour back),
with and without a `q` filter: median and worst of --runs, uncached (each answer reads the
manifest, the stream and the segments again; the History is kept, as a dashboard keeps it),
plus bytes per event on disk. `ingest` runs a real `sollol-otel indexer` process on a private
stream while this process writes --rate events/s into it, and reports the indexer's CPU (one core
= 100 %), how far behind it ended, and bytes per event of what it wrote. Prints markdown rows
for BENCHMARKS.md. The API-level history benchmarks are benchmarks/bench_history.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import psutil
import redis
import redis.asyncio

from sollol_otel.events import one_line_message
from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.history.bulk import import_entries
from sollol_otel.history.lease import lease_keys
from sollol_otel.history.query import History
from sollol_otel.history.store import Store, stream_folder
from sollol_otel.redis.entries import StreamEntry
from sollol_otel.wire import event_from_fields

MODELS = ["llama3.2:3b", "llama3.1:8b", "qwen2.5:7b", "mistral:7b", "phi3:mini", "gemma2:9b"]
NODES = [f"http://10.0.0.{n}:11434" for n in range(1, 9)]
TYPES = [
    "ROUTE_DECISION",
    "OLLAMA_NODE_SELECTED",
    "TASK_START",
    "TASK_COMPLETE",
    "FALLBACK_TRIGGERED",
    "CACHE_HIT",
]
REASONS = ["sufficient_resources", "lowest_latency", "ollama_error: Out of memory", "timeout"]
SPAN_MS = 2 * 3600 * 1000


def sollol_shaped(n: int, rng: random.Random, prefixes: list[str], ms: int) -> dict[str, Any]:
    """Event `n` as our bridge writes it (message, trace context, event id)."""
    instance, kind = n % 4, rng.choice(TYPES)
    fields: dict[str, Any] = {
        "timestamp": datetime.fromtimestamp((ms + rng.random()) / 1000, timezone.utc).isoformat(),
        "instance_id": f"host{instance}_{1000 + instance}_a1b2c3d{instance}", "hostname": f"host{instance}",
        "pid": 1000 + instance, "event_type": kind, "model": rng.choice(MODELS),
        "backend": rng.choice(["ollama", "rpc"]), "reason": rng.choice(REASONS),
    }  # fmt: skip
    if kind == "OLLAMA_NODE_SELECTED":
        fields["node_url"] = rng.choice(NODES)
        fields["latency_ms"] = round(rng.uniform(1, 50), 2)
    fields["message"] = one_line_message(kind, fields)
    fields["trace_id"] = os.urandom(16).hex()
    fields["span_id"] = os.urandom(8).hex()
    fields["service"] = "sollol"
    fields["schema_version"] = 1
    fields["event_id"] = f"{prefixes[instance]}{n:016x}"
    return fields


def generated(count: int, end_ms: int) -> Iterator[StreamEntry]:
    rng, prefixes = random.Random(1), [os.urandom(8).hex() for _ in range(4)]
    start = end_ms - SPAN_MS
    for n in range(count):
        ms = start + n * SPAN_MS // count
        yield StreamEntry(f"{ms}-{n % 1000}", event_from_fields(sollol_shaped(n, rng, prefixes, ms)))


async def _timed(run: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


async def query(args: argparse.Namespace) -> None:
    client = redis.asyncio.Redis.from_url(args.redis_url)
    stream = f"bench:history:{uuid.uuid4().hex[:8]}"  # never written: every answer comes from segments
    now_ms = int(time.time() * 1000)
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        manifest = import_entries(Path(root), stream, generated(args.events, now_ms))
        seconds, per_event = time.perf_counter() - started, manifest.bytes / args.events
        print(f"wrote {args.events:,} events in {seconds:.0f} s: {per_event:.1f} bytes/event on disk")
        last_2h = TimeRange(datetime.fromtimestamp((now_ms - SPAN_MS) / 1000, timezone.utc), None)
        print(f"\n| query over {args.events:,} events (2 h) | p50 ms | worst ms |\n|---|---|---|")
        history = await History.open(client, stream, Path(root))  # kept, as a dashboard keeps it
        assert history is not None
        for name, event_filter in (("", EventFilter()), (" q=memory", EventFilter.build(q="memory"))):
            for label, run in (
                ("stats (every dimension)", lambda f=event_filter: history.stats(f, last_2h, now_ms=now_ms)),
                (
                    "timeline 1m by event_type",
                    lambda f=event_filter: history.timeline(f, last_2h, bucket_ms=60_000, by="event_type"),
                ),
                (
                    "timeline 1m by node",
                    lambda f=event_filter: history.timeline(f, last_2h, bucket_ms=60_000, by="node"),
                ),
                ("page of 100, newest", lambda f=event_filter: history.page(f, last_2h, limit=100)),
                (
                    "page of 100, an hour back",
                    lambda f=event_filter: history.page(
                        f, last_2h, before=f"{now_ms - 3_600_000}-0", limit=100
                    ),
                ),
            ):
                p50, worst = await _timed(run, args.runs)
                print(f"| {label}{name} | {p50:.0f} | {worst:.0f} |")
    await client.aclose()


def ingest(args: argparse.Namespace) -> None:
    client = redis.Redis.from_url(args.redis_url)
    stream = f"bench:history:{uuid.uuid4().hex[:8]}"
    rng, prefixes = random.Random(2), [os.urandom(8).hex() for _ in range(4)]
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "SOLLOL_REDIS_URL": args.redis_url, "SOLLOL_HISTORY_DIR": root}
        indexer = subprocess.Popen(
            [sys.executable, "-m", "sollol_otel", "indexer", "--stream", stream],
            env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            process = psutil.Process(indexer.pid)
            time.sleep(3)  # imports and the lease
            cpu_before, started, n = process.cpu_times(), time.perf_counter(), 0
            while (elapsed := time.perf_counter() - started) < args.seconds:
                due = int(elapsed * args.rate) - n
                pipe = client.pipeline(transaction=False)
                for _ in range(due):
                    pipe.xadd(
                        stream,
                        {"event": orjson.dumps(sollol_shaped(n, rng, prefixes, int(time.time() * 1000)))},
                    )
                    n += 1
                pipe.execute()
                time.sleep(0.05)
            cpu_after = process.cpu_times()
            last = client.xinfo_stream(stream)["last-generated-id"].decode()
            store = Store(stream_folder(Path(root), stream))
            waited = time.perf_counter()
            while (manifest := store.newest()) is None or manifest.last_id != last:
                time.sleep(0.05)
            behind = time.perf_counter() - waited
            cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / args.seconds
        finally:
            indexer.terminate()
            indexer.wait(30)
            client.delete(stream, *lease_keys(stream))
    print(f"\n| indexer at {args.rate:,}/s for {args.seconds} s | value |\n|---|---|")
    print(f"| events written | {n:,} |\n| indexer CPU (one core = 100 %) | {cpu * 100:.0f} % |")
    print(f"| caught up after the last write | {behind:.1f} s |")
    print(f"| bytes/event on disk (unmerged segments) | {manifest.bytes / max(manifest.events, 1):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["query", "ingest"])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"{platform.node()}: {os.cpu_count()} cores, load {load:.1f}, Python {platform.python_version()}")
    if args.what == "query":
        asyncio.run(query(args))
    else:
        ingest(args)


if __name__ == "__main__":
    main()
