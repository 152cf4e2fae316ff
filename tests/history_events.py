"""A stream whose older part lives only in the history: SOLLOL-shaped events over two hours, indexed
by the real indexer into real Parquet files, then the stream trimmed and written on, so answers
must join the segments and the stream at the seam. `expected` is the full scan they must equal."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from waiting import eventually

from sollol_otel.events import Dimension, EventType, RoutingEvent
from sollol_otel.filters import EventFilter
from sollol_otel.history.indexer import IndexerThread, Options
from sollol_otel.wire import decode

#: Events indexed, then written after the indexer stopped, and the stream's length after trimming.
INDEXED, UNINDEXED, KEPT = 2400, 300, 600
STEP_MS = 2500
TYPES = [t.value for t in EventType]
MODELS = ["llama3.2:3b", "llama3.1:70b", "codellama:13b", "mistral:7b", "qwen2.5:14b"]
REASONS = ["sufficient_resources", "ollama_error: Out of memory", "timeout", "gpu memory low"]


def event(n: int) -> dict[str, Any]:
    """The nth event: every type, model, backend, 60 nodes (more than a default answer names),
    four instances, a trace every seventh, reasons `q` can find."""
    fields: dict[str, Any] = {
        "timestamp": "2026-11-27T12:03:45.123456",  # a writer's clock: ranges go by stream id
        "event_type": TYPES[n % len(TYPES)],
        "model": MODELS[n % 5] if n % 11 else None,
        "backend": ("ollama", "rpc", "Ollama")[n % 3],
        "node_url": f"http://10.0.0.{n % 60}:11434",
        "instance_id": f"host{n % 4}_{100 + n % 4}_abcd{n % 4:04d}",
        "reason": REASONS[n % 4],
    }
    if n % 7 == 0:
        fields["trace_id"] = f"{n % 3:032x}"
    return fields


@dataclass
class Seeded:
    """What was written (ids and raw fields, oldest first) and where the stream now begins."""

    entries: list[tuple[str, dict[bytes, bytes]]]
    first_in_stream: str
    indexed_to: str

    def matching(
        self, event_filter: EventFilter, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[tuple[str, RoutingEvent]]:
        """The full scan: every written event that passes, oldest first."""
        found = []
        for entry_id, fields in self.entries:
            ms = int(entry_id.partition("-")[0])
            decoded = decode(fields)
            if (
                isinstance(decoded, RoutingEvent)
                and event_filter.matches(decoded)
                and (since_ms is None or ms >= since_ms)
                and (until_ms is None or ms < until_ms)
            ):
                found.append((entry_id, decoded))
        return found

    def counts(self, event_filter: EventFilter, since_ms: int | None = None) -> dict[str, Counter[str]]:
        matched = [e for _, e in self.matching(event_filter, since_ms)]
        return {d.value: Counter(e.value(d) for e in matched) for d in Dimension}


def write_events(
    client: redis.Redis, stream: str, ids: Iterable[tuple[int, int]]
) -> list[tuple[str, dict[bytes, bytes]]]:
    written = []
    pipe = client.pipeline(transaction=False)
    for n, ms in ids:
        fields = {b"event": json.dumps(event(n)).encode()} if n % 97 else {b"event": b"not json"}
        pipe.xadd(stream, fields, id=f"{ms}-0")
        written.append((f"{ms}-0", fields))
    pipe.execute()
    return written


def index_all(redis_url: str, stream: str, root: Path) -> str:
    """Runs the real indexer until it has committed everything the stream holds; its last id."""
    client = redis.Redis.from_url(redis_url)
    last = client.xinfo_stream(stream)["last-generated-id"].decode()
    client.close()
    indexer = IndexerThread(redis_url, stream, root, Options(flush_seconds=0.2))
    indexer.start()
    try:
        eventually(
            lambda: indexer.status().get("last_id") == last, what="the indexer to reach the end", timeout=60
        )
    finally:
        indexer.stop()
    return last


def seed(client: redis.Redis, redis_url: str, stream: str, root: Path) -> Seeded:
    """INDEXED events over the last two hours, indexed; UNINDEXED newer ones; the stream trimmed to KEPT.

    Readers find the history at `root`: set SOLLOL_HISTORY_DIR to it (the indexer has stopped, so
    its lease no longer names the folder)."""
    now_ms = int(client.time()[0]) * 1000
    start = now_ms - (INDEXED + UNINDEXED) * STEP_MS - 5000
    entries = write_events(client, stream, ((n, start + n * STEP_MS) for n in range(INDEXED)))
    indexed_to = index_all(redis_url, stream, root)
    entries += write_events(
        client, stream, ((n, start + n * STEP_MS) for n in range(INDEXED, INDEXED + UNINDEXED))
    )
    client.xtrim(stream, maxlen=KEPT, approximate=False)
    first = client.xrange(stream, count=1)[0][0].decode()
    return Seeded(entries, first, indexed_to)
