"""The indexer: copies one stream, exactly once, into Parquet segments while it holds the lease.

Each commit is a segment file (written, then renamed) followed by a manifest naming it with the
stream position it reaches; both happen only while the lease is held, and the manifest's name
carries the lease's epoch, so a former holder's late commit is never read. After a crash the next
holder resumes from the last committed id: entries buffered but not committed are read again,
none twice. The stream reader's gap accounting records what was trimmed before it was read, and
a stream that was replaced (DEL, Redis restarted empty) is read from its new beginning.

Small segments are merged (eight of a size into one, within a day), history past its age or size
is dropped oldest first, and files no manifest uses are deleted after a grace time, so a reader
that listed the folder a moment ago can still read what it listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib.util
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio

from sollol_otel.history import segments
from sollol_otel.history.lease import LEASE_MS, Lease
from sollol_otel.history.store import DAY_MS, GapRecord, Manifest, Segment, Store, default_root, stream_folder
from sollol_otel.redis.backoff import Backoff
from sollol_otel.redis.client import CONNECTION_ERRORS, async_client
from sollol_otel.redis.entries import Gap, StreamEntry
from sollol_otel.redis.stream import Position, StreamReader, stream_key
from sollol_otel.redis.urls import scrub
from sollol_otel.settings import HISTORY_MAX_SIZE, HISTORY_RETENTION
from sollol_otel.wire import as_text

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

#: Seconds between commits while events arrive: the most a crash makes the next holder re-read.
FLUSH_SECONDS = 2.0
#: Rows that make a segment commit at once (memory stays bounded at any rate).
SEGMENT_ROWS = 200_000
#: Entries read per round trip.
READ_COUNT = 2000
#: Seconds to wait after a read that drained the stream, before the next (at most a quarter of
#: the flush time): events then come in batches of hundreds, not one round trip and thread hop
#: each, which cost the indexer in a dashboard 40 % of a core at 1,000 events/s.
DRAINED_PAUSE_SECONDS = 0.25
#: Segments of one size tier, within one day, merged into one.
MERGE_FAN_IN = 8
#: A merge never makes a segment larger than this many rows.
MERGE_MAX_ROWS = 8_000_000
#: Seconds between housekeeping rounds (merging, retention, deleting unused files).
MAINTENANCE_SECONDS = 30.0
#: How long a file no manifest names is kept, for readers that listed the folder just before.
GRACE_MS = 10 * 60 * 1000
#: Seconds before writing again after the folder refused a write (a full disk).
STORAGE_RETRY_SECONDS = 30.0


class State(str, enum.Enum):
    STARTING = "starting"
    INDEXING = "indexing"
    STANDBY = "standby"  # another process holds the lease
    STORAGE_FAILED = "storage_failed"  # the folder refused a write: nothing is written until it works
    REDIS_DOWN = "redis_down"
    STOPPED = "stopped"
    UNAVAILABLE = "unavailable"  # the history extra is not installed
    FAILED = "failed"  # an unexpected error: retried after a pause


@dataclass(frozen=True)
class Options:
    """What an indexer keeps and how often it works; the defaults are the settings'."""

    retention_ms: int | None = None
    max_bytes: int | None = None
    lease_ms: int = LEASE_MS
    flush_seconds: float = FLUSH_SECONDS
    segment_rows: int = SEGMENT_ROWS
    maintenance_seconds: float = MAINTENANCE_SECONDS
    grace_ms: int = GRACE_MS
    storage_retry_seconds: float = STORAGE_RETRY_SECONDS

    @classmethod
    def from_env(cls) -> Options:
        retention = HISTORY_RETENTION.read()
        return cls(
            retention_ms=None if retention is None else int(retention * 1000),
            max_bytes=HISTORY_MAX_SIZE.read(),
        )


def trim_warning(length: int | None, rate: float, behind_seconds: float) -> str | None:
    """Why entries may be trimmed before they are indexed, or None: the stream must keep at least
    what arrives while the indexer is behind (its lag, a flush, a takeover)."""
    if length is None or length >= rate * behind_seconds:
        return None
    return (
        f"the stream keeps {length} entries, fewer than {rate:.0f}/s x {behind_seconds:.0f}s (lag, flush and "
        "takeover): entries may be trimmed before they are indexed; raise SOLLOL_ROUTING_STREAM_MAXLEN"
    )


class LeaseLost(Exception):
    """The lease expired or was taken: nothing more may be committed under this epoch."""


def _gap_record(gap: Gap) -> GapRecord:
    at = gap.first_id or gap.after_id
    return GapRecord(gap.after_id, gap.first_id, gap.missed, gap.reset, stream_key(at)[0])


def _rows(entries: list[StreamEntry]) -> list[dict[str, Any]]:
    return [segments.row_of(entry) for entry in entries]


def _tier(rows: int) -> int:
    return int(math.log(max(rows, 1), MERGE_FAN_IN))


class Indexer:
    """One process's indexer of one stream: stands by until it gets the lease, then indexes."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        stream: str,
        root: Path | None = None,
        options: Options | None = None,
    ) -> None:
        self._client = client
        self.stream = stream
        self.store = Store(stream_folder(root or default_root(), stream))
        self.options = options or Options.from_env()
        self._lease = Lease(client, stream, self.store.folder, lease_ms=self.options.lease_ms)
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._stopping = asyncio.Event()
        self.state = State.STARTING
        self.detail = ""
        self.manifest: Manifest | None = None
        self.rows_indexed = 0
        self.rate = _Rate()
        self.stream_length: int | None = None
        self.lag_ms = 0

    async def run(self) -> None:
        """Index until `stop()`: take the lease whenever it is free, survive Redis going away."""
        if importlib.util.find_spec("duckdb") is None:
            self._set(State.UNAVAILABLE, "DuckDB is not installed: pip install 'sollol-otel[history]'")
            return
        while not self._stopping.is_set():
            try:
                if await self._lease.acquire():
                    await self._hold()
                else:
                    self._set(State.STANDBY, "another process holds the lease")
                    await self._pause(self.options.lease_ms / 3000)
            except CONNECTION_ERRORS as exc:
                self._set(State.REDIS_DOWN, f"{type(exc).__name__}: {exc}")
                await self._pause(1.0)
            except segments.StorageError as exc:
                self._set(State.STORAGE_FAILED, f"writing to {self.store.folder} failed: {exc}")
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await self._lease.release()  # a host whose disk works may take over
                await self._pause(self.options.storage_retry_seconds)
            except LeaseLost:
                self._set(State.STANDBY, "the lease was lost (a long pause or Redis failover); standing by")
            except Exception as exc:  # anything else: said in health and the log, then tried again
                log.exception("history indexer of %s failed", self.stream)
                self._set(State.FAILED, f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await self._lease.release()
                await self._pause(self.options.storage_retry_seconds)
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self._lease.release()
        self._set(State.STOPPED, "")

    def stop(self) -> None:
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _set(self, state: State, detail: str) -> None:
        if state != self.state or detail != self.detail:
            log.info("history indexer of %s: %s %s", self.stream, state.value, detail)
        self.state, self.detail = state, detail

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            self._connection = segments.connect()
        return self._connection

    async def _hold(self) -> None:
        """Index while holding the lease; the first manifest of the epoch is written at once."""
        epoch = self._lease.epoch
        done = asyncio.Event()
        renewer = asyncio.create_task(self._renew_loop(done))
        try:
            await asyncio.to_thread(self.store.create)
            found = await asyncio.to_thread(self.store.newest) or Manifest()
            manifest = await asyncio.to_thread(lambda: self._verified(found))
            await self._commit(manifest.next(epoch, updated_ms=await self._redis_ms()), renewer)
            self._set(State.INDEXING, f"epoch {epoch}")
            await self._index(renewer)
        finally:
            done.set()  # not cancel(): a Redis command cancelled midway can leave redis-py waiting for ever
            with contextlib.suppress(LeaseLost, *CONNECTION_ERRORS):
                await renewer

    async def _renew_loop(self, done: asyncio.Event) -> None:
        """Renew a third of the lease's time before it expires, until `done`; LeaseLost ends it."""
        while not done.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), self.options.lease_ms / 3000)
                return
            if not await self._lease.renew():
                raise LeaseLost

    def _verified(self, manifest: Manifest) -> Manifest:
        """The manifest without segments that are missing, cut short or unreadable (counted as corrupt)."""
        good: list[Segment] = []
        bad: list[Segment] = []
        for segment in manifest.segments:
            (good if self._readable(segment) else bad).append(segment)
        if not bad:
            return manifest
        log.warning("history of %s: corrupt segments left out: %s", self.stream, [s.file for s in bad])
        return replace(
            manifest,
            segments=tuple(good),
            corrupt=manifest.corrupt + tuple(f"{s.file} ({s.rows} rows)" for s in bad),
        )

    def _readable(self, segment: Segment) -> bool:
        path = self.store.segment_path(segment.file)
        try:
            if path.stat().st_size != segment.bytes:
                return False
            rows = self._duckdb().execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
        except Exception:
            return False
        return rows is not None and rows[0] == segment.rows

    async def _redis_ms(self) -> int:
        seconds, micros = await self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def _commit(self, manifest: Manifest, renewer: asyncio.Task[None]) -> None:
        """Commit only while the lease is held (checked right before), under the lease's epoch."""
        if renewer.done() or not await self._lease.renew():
            raise LeaseLost
        try:
            await asyncio.to_thread(lambda: self.store.commit(manifest))
        except OSError as exc:
            raise segments.StorageError(f"{type(exc).__name__}: {exc}") from exc
        self.manifest = manifest

    async def _index(self, renewer: asyncio.Task[None]) -> None:
        assert self.manifest is not None
        reader = StreamReader(
            self._client, self.stream, Position(self.manifest.last_id, self.manifest.offset)
        )
        rows: list[dict[str, Any]] = []
        gaps: list[GapRecord] = []
        started = time.monotonic()
        next_maintenance = 0.0
        while not self._stopping.is_set():
            if renewer.done():
                raise LeaseLost
            batch = await reader.read(
                block_ms=int(min(1.0, self.options.flush_seconds) * 1000), count=READ_COUNT
            )
            entries = [item for item in batch if isinstance(item, StreamEntry)]
            for gap in (item for item in batch if isinstance(item, Gap)):
                gaps.append(_gap_record(gap))
                if gap.reset and reader.position.last_id != "0-0" and not await self._replica_of_ours(rows):
                    reader.position = Position("0-0", 0)
            if entries:
                rows.extend(await asyncio.to_thread(_rows, entries))
                self.rate.add(len(entries))
            if 0 < len(entries) < READ_COUNT:
                await self._pause(min(DRAINED_PAUSE_SECONDS, self.options.flush_seconds / 4))
            due = time.monotonic() - started >= self.options.flush_seconds
            if (rows or gaps) and (due or len(rows) >= self.options.segment_rows):
                await self._flush(rows, gaps, reader.position, renewer)
                rows, gaps, started = [], [], time.monotonic()
            elif not rows:
                started = time.monotonic()
            if time.monotonic() >= next_maintenance:
                await self._maintain(renewer)
                next_maintenance = time.monotonic() + self.options.maintenance_seconds
        if rows or gaps:
            await self._flush(rows, gaps, reader.position, renewer)

    async def _replica_of_ours(self, rows: list[dict[str, Any]]) -> bool:
        """Whether a replaced stream that holds ids up to ours is a copy of what we read (a failover
        to a replica: go on after our id) rather than a new stream whose ids went back (deleted
        and written again: read it from its beginning). Its first entry tells: indexed, or not."""
        assert self.manifest is not None
        first: Any = await self._client.xrange(self.stream, min="-", max="+", count=1)
        if not first:
            return False
        ms, seq = stream_key(as_text(first[0][0]))
        if any(row["ms"] == ms and row["seq"] == seq for row in rows):
            return True
        files = [
            str(self.store.segment_path(s.file)) for s in self.manifest.segments if s.min_ms <= ms <= s.max_ms
        ]
        if not files:
            return False
        query = "SELECT count(*) FROM read_parquet(?) WHERE ms = ? AND seq = ?"
        found = await asyncio.to_thread(lambda: self._duckdb().execute(query, [files, ms, seq]).fetchone())
        return found is not None and found[0] > 0

    async def _flush(
        self,
        rows: list[dict[str, Any]],
        gaps: list[GapRecord],
        position: Position,
        renewer: asyncio.Task[None],
    ) -> None:
        assert self.manifest is not None
        added: tuple[Segment, ...] = ()
        if rows:
            path = self.store.segment_path(f"{self._lease.epoch:012d}-{uuid.uuid4().hex}.parquet")
            written = await asyncio.to_thread(lambda: segments.write_segment(self._duckdb(), rows, path))
            added = (written,)
        manifest = self.manifest.next(
            self._lease.epoch,
            last_id=position.last_id,
            offset=position.offset,
            segments=self.manifest.segments + added,
            gaps=self.manifest.gaps + tuple(gaps),
            updated_ms=await self._redis_ms(),
        )
        await self._commit(manifest, renewer)
        self.rows_indexed += len(rows)

    async def _maintain(self, renewer: asyncio.Task[None]) -> None:
        """Retention, one merge, and deleting files no manifest uses any more."""
        assert self.manifest is not None
        now_ms = await self._redis_ms()
        await self._measure_lag()
        kept, dropped = self._retained(now_ms)
        merged = await self._merge(kept, now_ms)
        start = min((s.min_ms for s in kept), default=0)
        gaps = tuple(g for g in self.manifest.gaps if g.at_ms >= start)  # none before history's start
        if dropped or merged is not None or gaps != self.manifest.gaps:
            segments_now, retired = (kept, dropped) if merged is None else merged
            retired_now = self.manifest.retired + tuple((s.file, now_ms) for s in retired)
            await self._commit(
                self.manifest.next(
                    self._lease.epoch,
                    segments=segments_now,
                    retired=retired_now,
                    gaps=gaps,
                    updated_ms=now_ms,
                ),
                renewer,
            )
        await self._collect(now_ms, renewer)

    async def _measure_lag(self) -> None:
        """The stream's length, and how far the committed position is behind its newest entry."""
        assert self.manifest is not None
        try:
            info = await self._client.xinfo_stream(self.stream)
        except redis.ResponseError:  # no stream yet
            self.stream_length, self.lag_ms = 0, 0
            return
        self.stream_length = int(info["length"])
        newest = stream_key(as_text(info["last-generated-id"]))[0]
        self.lag_ms = max(0, newest - stream_key(self.manifest.last_id)[0])

    def _retained(self, now_ms: int) -> tuple[tuple[Segment, ...], list[Segment]]:
        """Segments kept by age and size (the oldest dropped first), and those dropped."""
        assert self.manifest is not None
        options = self.options
        by_age = sorted(self.manifest.segments, key=lambda s: (s.max_ms, stream_key(s.last_id)))
        dropped = [
            s for s in by_age if options.retention_ms is not None and s.max_ms < now_ms - options.retention_ms
        ]
        kept = [s for s in by_age if s not in dropped]
        total = sum(s.bytes for s in kept)
        while kept and options.max_bytes is not None and total > options.max_bytes:
            oldest = kept.pop(0)
            dropped.append(oldest)
            total -= oldest.bytes
        order = {s.file: i for i, s in enumerate(self.manifest.segments)}
        return tuple(sorted(kept, key=lambda s: order[s.file])), dropped

    async def _merge(
        self, kept: tuple[Segment, ...], now_ms: int
    ) -> tuple[tuple[Segment, ...], list[Segment]] | None:
        """Merge MERGE_FAN_IN segments of one size tier and one day, if there are; None if not."""
        groups: dict[tuple[int, int], list[Segment]] = {}
        for segment in kept:
            if segment.rows < MERGE_MAX_ROWS // MERGE_FAN_IN:
                groups.setdefault((segment.min_ms // DAY_MS, _tier(segment.rows)), []).append(segment)
        sources = next(
            (group[:MERGE_FAN_IN] for group in groups.values() if len(group) >= MERGE_FAN_IN), None
        )
        if sources is None:
            return None
        path = self.store.segment_path(f"{self._lease.epoch:012d}-{uuid.uuid4().hex}.parquet")
        size = await asyncio.to_thread(
            lambda: segments.merge_segments(self._duckdb(), sources, self.store.segments, path)
        )
        merged = Segment(
            file=path.name,
            rows=sum(s.rows for s in sources),
            events=sum(s.events for s in sources),
            first_id=sources[0].first_id,
            last_id=sources[-1].last_id,
            min_ms=min(s.min_ms for s in sources),
            max_ms=max(s.max_ms for s in sources),
            bytes=size,
            format=segments.FORMAT,
        )
        first = kept.index(sources[0])
        rest = [s for s in kept if s not in sources]
        return (*rest[:first], merged, *rest[first:]), sources

    async def _collect(self, now_ms: int, renewer: asyncio.Task[None]) -> None:
        """Delete retired files past the grace time, and files no manifest names (a crashed
        writer's, a former holder's) once as old."""
        assert self.manifest is not None
        grace = self.options.grace_ms
        expired = {name for name, at in self.manifest.retired if at < now_ms - grace}
        if expired:
            retired = tuple((name, at) for name, at in self.manifest.retired if name not in expired)
            await self._commit(
                self.manifest.next(self._lease.epoch, retired=retired, updated_ms=now_ms), renewer
            )
        if renewer.done() or not await self._lease.renew():
            raise LeaseLost  # a former holder deletes nothing
        await asyncio.to_thread(lambda: self._delete_unused(expired, time.time() * 1000 - grace))

    def _delete_unused(self, expired: set[str], older_than_ms: float) -> None:
        """Never a file the newest manifest on disk names (whoever wrote it), nor one written under
        a later epoch than ours: a paused former holder that wakes up here cannot harm the new one's."""
        assert self.manifest is not None
        used = set[str]()
        for manifest in (self.manifest, self.store.newest() or self.manifest):
            used |= {s.file for s in manifest.segments} | {name for name, _ in manifest.retired}
        for path in self.store.segments.iterdir():
            epoch = path.name.split("-", 1)[0]
            if path.name in used or not epoch.isdigit() or int(epoch) > self._lease.epoch:
                continue
            with contextlib.suppress(FileNotFoundError):
                if path.name in expired or path.stat().st_mtime * 1000 < older_than_ms:
                    path.unlink()

    def status(self) -> dict[str, Any]:
        """This process's indexer: its state, position and lag, and whether the stream would trim
        entries before they are read (stream length < rate * (flush time + takeover))."""
        manifest = self.manifest
        rate = self.rate.per_second()
        return {
            "state": self.state.value,
            "detail": self.detail,
            "stream": self.stream,
            "directory": str(self.store.folder),
            "epoch": self._lease.epoch,
            "last_id": None if manifest is None else manifest.last_id,
            "rows_indexed": self.rows_indexed,
            "rate_per_second": round(rate, 1),
            "stream_length": self.stream_length,
            "lag_ms": self.lag_ms,
            "trim_warning": trim_warning(
                self.stream_length,
                rate,
                self.lag_ms / 1000 + self.options.flush_seconds + self.options.lease_ms / 1000,
            ),
        }


class _Rate:
    """Entries per second over the last minute, in one-second slots."""

    WINDOW = 60

    def __init__(self) -> None:
        self._slots: dict[int, int] = {}

    def add(self, count: int) -> None:
        second = int(time.monotonic())
        self._slots[second] = self._slots.get(second, 0) + count
        for old in [s for s in self._slots if s <= second - self.WINDOW]:
            del self._slots[old]

    def per_second(self) -> float:
        now = int(time.monotonic())
        return sum(n for s, n in self._slots.items() if s > now - self.WINDOW) / self.WINDOW


async def connect(
    redis_url: str, stream: str, stopped: Callable[[], bool], report: Callable[[str], None]
) -> redis.asyncio.Redis | None:
    """A client, once Redis answers (a server starts while Redis is away); None if stopped first."""
    backoff = Backoff()
    while not stopped():
        try:
            return await async_client(redis_url, key=stream)
        except CONNECTION_ERRORS as exc:
            report(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(backoff.next_delay())
    return None


class IndexerThread:
    """An indexer on its own thread and event loop, so its decoding and writing never delay the
    live feeds of the server that runs it (the dashboard)."""

    def __init__(
        self, redis_url: str, stream: str, root: Path | None = None, options: Options | None = None
    ) -> None:
        self._redis_url, self._stream, self._root, self._options = redis_url, stream, root, options
        self.indexer: Indexer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._unreachable = ""
        self._refused = ""
        self._thread = threading.Thread(target=self._main, name=f"history-indexer {stream}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        asyncio.run(self._run())

    def _report(self, detail: str) -> None:
        self._unreachable = detail

    async def _run(self) -> None:
        try:
            client = await connect(self._redis_url, self._stream, self._stopping.is_set, self._report)
        except (
            redis.exceptions.RedisError
        ) as exc:  # refused at connect (a db a Cluster lacks): said, not retried
            self._refused = scrub(f"{type(exc).__name__}: {exc}", self._redis_url)
            return
        if client is None:
            return
        try:
            self.indexer = Indexer(client, self._stream, self._root, self._options)
            self._loop = asyncio.get_running_loop()
            if not self._stopping.is_set():
                await self.indexer.run()
        finally:
            await client.aclose()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is buffered, give the lease up, and end the thread."""
        self._stopping.set()
        loop, indexer = self._loop, self.indexer
        if loop is not None and indexer is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(indexer.stop)
        self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        if self.indexer is not None:
            return self.indexer.status()
        if self._refused:
            return {"state": State.FAILED.value, "detail": self._refused}
        if self._unreachable:
            return {"state": State.REDIS_DOWN.value, "detail": self._unreachable}
        return {"state": State.STARTING.value, "detail": ""}
