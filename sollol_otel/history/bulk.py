"""Entries written straight into a stream's history, without Redis or a lease: for benchmarks, and
to load a history that no indexer holds yet. A running indexer takes it over as it finds it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from sollol_otel.history import segments
from sollol_otel.history.store import Manifest, Segment, Store, stream_folder
from sollol_otel.redis.entries import StreamEntry


def import_entries(
    root: Path, stream: str, entries: Iterable[StreamEntry], *, segment_rows: int = 1_000_000
) -> Manifest:
    """Write `entries` (in id order) as segments of `segment_rows` and commit one manifest after
    them. Only while no indexer runs for `stream`: nothing fences this commit."""
    store = Store(stream_folder(root, stream))
    store.create()
    found = store.newest() or Manifest()
    connection = segments.connect()
    added: list[Segment] = []
    iterator = iter(entries)
    while batch := list(islice(iterator, segment_rows)):
        path = store.segment_path(f"{found.epoch:012d}-{uuid.uuid4().hex}.parquet")
        added.append(segments.write_segment(connection, [segments.row_of(e) for e in batch], path))
    if not added:
        return found
    manifest = found.next(
        found.epoch, segments=found.segments + tuple(added), last_id=added[-1].last_id, offset=None
    )
    store.commit(manifest)
    return manifest
