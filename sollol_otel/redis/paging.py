"""Reading the stream backwards in pages, for `tail --history` with filters and for `stats`.

A filter may match one event in a thousand, so "the last N matching" cannot be one XREVRANGE
of N; a page at a time keeps memory and round trips bounded however long the stream is.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from sollol_otel.redis.stream import StreamEntry, StreamReader


async def pages_back(
    reader: StreamReader, *, since: str | None, page: int
) -> AsyncGenerator[list[StreamEntry], None]:
    """Pages from the newest entry back to `since` (or the start), each page oldest first.

    The first page also places the reader at the end of the stream, so following afterwards
    continues exactly after the newest entry seen here.
    """
    entries = await reader.history(page, since=since)
    while entries:
        yield entries
        if len(entries) < page:
            return
        entries = await reader.history(page, since=since, before=entries[0].id)
