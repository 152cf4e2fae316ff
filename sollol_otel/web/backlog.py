"""Reading what is already in the stream: the newest events (filtered, paging back) and catch-up.

Both read with the one StreamReader, so decoding, offsets and gap detection are the same as
the live reader's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio

from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.redis.entries import StreamEntry
from sollol_otel.redis.stream import Position, StreamReader, stream_key
from sollol_otel.web.messages import Message, batch_messages

#: Entries read per round trip when scanning.
PAGE = 1000
#: Most entries one request scans for filtered matches before handing back a cursor.
MAX_SCAN = 50_000


@dataclass(frozen=True)
class Recent:
    """The newest matching events, oldest first, and where to continue paging back from."""

    messages: list[Message]
    #: The newest id in the stream at read time (live events up to it are already covered).
    position: str
    #: Pass as `before` for the next older page; None when the start of the stream was reached.
    next_before: str | None


def range_bounds(time_range: TimeRange, before: str | None = None) -> tuple[str | None, str | None]:
    """The stream ids to read between, (`since`, `before`), for XREVRANGE; None means unbounded."""
    since_ms, until_ms = time_range.since_ms, time_range.until_ms
    since = None if since_ms is None else f"{since_ms}-0"
    if until_ms is not None and (before is None or stream_key(before) > (until_ms, 0)):
        before = f"{until_ms}-0"
    return since, before


async def recent(
    client: redis.asyncio.Redis,
    stream: str,
    event_filter: EventFilter,
    limit: int,
    before: str | None = None,
    time_range: TimeRange | None = None,
) -> Recent:
    """Up to `limit` events matching the filter in the time range, newest last, scanning back at
    most MAX_SCAN entries."""
    reader = StreamReader(client, stream)
    since, before = range_bounds(time_range or TimeRange(), before)
    found: list[Message] = []
    scanned = 0
    end_offset: int | None = None
    pages = reader.pages_back(max(limit, 1) if event_filter.is_empty else PAGE, since=since, before=before)
    async with contextlib.aclosing(pages):
        async for page in pages:
            if scanned == 0 and before is None and page[-1].id == reader.position.last_id:
                end_offset = reader.position.offset  # the newest entry's offset: the rest count back
            need = limit - len(found)
            if need > 0:
                matches = [
                    m
                    for m, event in batch_messages(list(page), end_offset)
                    if event is not None and event_filter.matches(event)
                ]
                found = matches[-need:] + found
            scanned += len(page)
            if len(found) >= limit:
                return Recent(found, reader.position.last_id, found[0].id if found else None)
            if scanned >= MAX_SCAN:
                return Recent(found, reader.position.last_id, page[0].id)
            end_offset = None if end_offset is None else end_offset - len(page)
    return Recent(found, reader.position.last_id, None)


async def catch_up(
    client: redis.asyncio.Redis, stream: str, event_filter: EventFilter, after: str, offset: int | None
) -> AsyncIterator[tuple[list[Message], str]]:
    """Every matching event after `after` (gaps included), page by page, with the position reached.

    With the client's `offset` a trimmed resume point yields a gap with the exact count.
    """
    reader = StreamReader(client, stream, Position(after, offset))
    while True:
        batch = await reader.read(block_ms=1, count=PAGE)
        messages = [
            message
            for message, event in batch_messages(batch, reader.position.offset)
            if event is None or event_filter.matches(event)
        ]
        yield messages, reader.position.last_id
        if sum(isinstance(item, StreamEntry) for item in batch) < PAGE:
            return
