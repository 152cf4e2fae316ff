"""The read side: exact answers over the Parquet segments plus the stream's newest entries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import redis.asyncio

from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.redis.stream import StreamEntry


class History:
    """One stream's history as every process sees it: the newest manifest of the highest epoch,
    and after its last id, the stream itself (no entry twice, none missed at the seam)."""

    @classmethod
    async def open(
        cls, client: redis.asyncio.Redis, stream: str, directory: Path | None = None
    ) -> History | None:
        """The history of `stream`, or None when no indexer has committed any yet.

        `directory`: the stream's history folder's parent (SOLLOL_HISTORY_DIR); None asks the
        lease (the indexer publishes its directory there), then the setting's default.
        """
        raise NotImplementedError

    async def stats(
        self, event_filter: EventFilter, time_range: TimeRange, *, now_ms: int, top: int = 50
    ) -> dict[str, Any]:
        """Counts of the matching events in range.

        `{"events", "skipped", "by_event_type", "by_backend", "by_model", "by_node", "by_instance",
        "top_fallback_reasons", "gaps", "start_ms"}`: each `by_*` is `{"counts": {value: n},
        "other": n, "bounded": bool}` (the top `top` values; `other` counts the rest, so a value
        named "other" stays distinguishable); `gaps` are `{"after_id", "first_id", "missed",
        "reset", "at_ms"}` in range (missed None: unknown).
        """
        raise NotImplementedError

    async def timeline(
        self, event_filter: EventFilter, time_range: TimeRange, *, bucket_ms: int, by: str, top: int = 50
    ) -> dict[str, Any]:
        """Counts per bucket (aligned to `bucket_ms` on the stream-id clock) per value of `by`.

        `{"bucket_ms", "by", "buckets": [{"start_ms", "counts": {value: n}, "other": n}],
        "values": [top values over the whole range], "bounded": bool, "gaps": [...]}`; only
        buckets holding events are listed.
        """
        raise NotImplementedError

    async def page(
        self, event_filter: EventFilter, time_range: TimeRange, *, before: str | None = None, limit: int
    ) -> list[StreamEntry]:
        """Up to `limit` matching entries before the id `before` (exclusive; None: the newest),
        newest first, from the stream back into the segments. Skipped entries are not returned."""
        raise NotImplementedError

    def events(self, event_filter: EventFilter, time_range: TimeRange) -> AsyncIterator[StreamEntry]:
        """Every matching entry in range, oldest first, streamed in bounded batches."""
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        """What the history holds and costs: start, events, size on disk, bytes a day at the
        current rate, corrupt files, gaps, the indexer's position and lag warning."""
        raise NotImplementedError
