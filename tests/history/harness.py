"""What the history tests share: varied events written at chosen times, the full scan every answer
must equal, and an indexer run in this process or as a real `sollol-otel indexer` process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import redis

from sollol_otel.events import MISSING, Dimension, EventType, RoutingEvent
from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.history.indexer import Indexer, Options
from sollol_otel.history.store import Manifest, Store, stream_folder
from sollol_otel.redis.client import async_client
from sollol_otel.redis.entries import StreamEntry
from sollol_otel.redis.stream import stream_key
from sollol_otel.wire import decode

#: Short times, so hand-overs and commits happen within a test's patience.
FAST = Options(lease_ms=2000, flush_seconds=0.2, maintenance_seconds=0.2, grace_ms=60_000)
MODELS = ["llama3.2:3b", "Llama3.1:8B", "qwen2.5:7b", "tiny-llama3", "mistral", None, ""]
BACKENDS = ["ollama", "rpc", "Ollama", None]
REASONS = ["sufficient_resources", "lowest_latency", "Überlast in İstanbul", "ollama_error: OOM", None]
TYPES = ["ROUTE_DECISION", "OLLAMA_NODE_SELECTED", "RPC_BACKEND_SELECTED", "FALLBACK_TRIGGERED", "cache_hit"]


def varied_event(i: int) -> dict[str, Any]:
    """Event `i` of a mix every filter can tell apart: names in several cases, missing values, the
    three ways of naming a node, trace ids in lower and upper case hex and not hex at all."""
    kind = TYPES[i % len(TYPES)]
    event: dict[str, Any] = {
        "timestamp": f"2026-11-27T12:{i % 60:02d}:00.{i:06d}",
        "instance_id": f"host{i % 3}_{100 + i % 3}_a1b2c3d{i % 3}",
        "event_type": kind,
        "model": MODELS[i % len(MODELS)],
        "backend": BACKENDS[i % len(BACKENDS)],
        "reason": REASONS[i % len(REASONS)],
    }
    if kind == "OLLAMA_NODE_SELECTED":
        event["node_url"] = f"http://10.0.0.{i % 4}:11434"
    elif kind == "RPC_BACKEND_SELECTED":
        event.update(backend_host=f"10.0.1.{i % 2}", backend_port=50052)
    elif i % 7 == 0:
        event["node"] = "gpu-box-7"
    if i % 4 == 0:
        event["message"] = f"custom message {i} → Überall"
    if i % 11 == 0:
        event["trace_id"] = f"{i:032X}"
    elif i % 13 == 0:
        event["trace_id"] = f"trace-{i}"
    else:
        event["trace_id"] = f"{i // 3:032x}"
        event["span_id"] = os.urandom(8).hex()
        event["event_id"] = os.urandom(16).hex()
    return event


def write_varied(
    client: redis.Redis, stream: str, count: int, *, start_ms: int, step_ms: int = 250
) -> list[str]:
    """`count` events (and now and then an entry no reader can decode) with ids at chosen times."""
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        entry_id = f"{start_ms + i * step_ms}-{i % 3}"
        if i % 17 == 5:
            pipe.xadd(stream, {"event": "not json"} if i % 2 else {"other": "no event field"}, id=entry_id)
        else:
            pipe.xadd(stream, {"event": json.dumps(varied_event(i))}, id=entry_id)
    return [entry_id.decode() for entry_id in pipe.execute()]


def full_scan(client: redis.Redis, stream: str) -> list[StreamEntry]:
    """Every entry the stream holds, decoded as every reader decodes it."""
    return [StreamEntry(entry_id.decode(), decode(fields)) for entry_id, fields in client.xrange(stream)]


def in_range(entry_id: str, time_range: TimeRange) -> bool:
    ms = stream_key(entry_id)[0]
    since, until = time_range.since_ms, time_range.until_ms
    return (since is None or ms >= since) and (until is None or ms < until)


def matching(
    entries: list[StreamEntry], event_filter: EventFilter, time_range: TimeRange
) -> list[StreamEntry]:
    return [
        e
        for e in entries
        if isinstance(e.item, RoutingEvent) and in_range(e.id, time_range) and event_filter.matches(e.item)
    ]


def scanned_counts(
    entries: list[StreamEntry], event_filter: EventFilter, time_range: TimeRange
) -> dict[str, Counter[str]]:
    """Counts per dimension and of fallback reasons, by decoding and filtering every event."""
    counts = {d.value: Counter[str]() for d in Dimension} | {"fallback_reason": Counter[str]()}
    for entry in matching(entries, event_filter, time_range):
        assert isinstance(entry.item, RoutingEvent)
        for dimension in Dimension:
            counts[dimension.value][entry.item.value(dimension)] += 1
        if entry.item.event_type == EventType.FALLBACK_TRIGGERED:
            counts["fallback_reason"][entry.item.text("reason") or MISSING] += 1
    return counts


def answered_counts(stats: dict[str, Any]) -> dict[str, Counter[str]]:
    counts = {d.value: Counter[str](stats[f"by_{d.value}"]["counts"]) for d in Dimension}
    counts["fallback_reason"] = Counter[str](stats["top_fallback_reasons"]["counts"])
    return counts


def newest(root: Path, stream: str) -> Manifest | None:
    return Store(stream_folder(root, stream)).newest()


def indexed_to(root: Path, stream: str, last_id: str) -> bool:
    """Whether a committed manifest reaches `last_id`."""
    manifest = newest(root, stream)
    return manifest is not None and manifest.last_id == last_id


async def wait_until(condition: Any, timeout: float = 30.0) -> None:
    """Poll an async-friendly condition (run in a thread: it reads files) until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(condition):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition!r}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def indexing(
    redis_url: str, stream: str, root: Path, options: Options = FAST
) -> AsyncIterator[Indexer]:
    """An indexer running in this process for the block; stopped (committing what it has) after."""
    client = await async_client(redis_url, key=stream)
    indexer = Indexer(client, stream, root, options)
    task = asyncio.create_task(indexer.run())
    try:
        yield indexer
    finally:
        indexer.stop()
        await task
        await client.aclose()


async def index_all(redis_url: str, stream: str, root: Path, options: Options = FAST) -> None:
    """Index everything the stream holds now, then stop."""
    last = redis.Redis.from_url(redis_url).xinfo_stream(stream)["last-generated-id"].decode()
    async with indexing(redis_url, stream, root, options):
        await wait_until(lambda: indexed_to(root, stream, last))


@contextlib.contextmanager
def indexer_process(redis_url: str, stream: str, root: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `sollol-otel indexer` process; killed (if still running) when the block ends."""
    env = {**os.environ, "SOLLOL_REDIS_URL": redis_url, "SOLLOL_HISTORY_DIR": str(root)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sollol_otel", "indexer", "--stream", stream],
            env=env,
            stderr=out,
            stdout=out,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
