"""The read side: exact answers over the Parquet segments plus the stream's newest entries.

Every answer reads one snapshot: the newest manifest of the highest epoch, and the stream after
the manifest's last id (the seam: segments hold ids up to it, the stream the ids after it; no
entry twice, none missed), so every process that reads the same folder gives the same answer.
The segments are counted with DuckDB (a column scan of the values the indexer computed with the
filter's own code); the stream's part is decoded and filtered in Python; the two are added
before any top N is taken, so the top N over the union is exact.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio

from sollol_otel.events import MISSING, Dimension, EventType, RoutingEvent
from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.history import segments
from sollol_otel.history.indexer import FLUSH_SECONDS, trim_warning
from sollol_otel.history.lease import LEASE_MS, holder
from sollol_otel.history.store import DAY_MS, GapRecord, Manifest, Segment, Store, default_root, stream_folder
from sollol_otel.redis.entries import StreamEntry
from sollol_otel.redis.stream import stream_key
from sollol_otel.wire import as_text, decode

if TYPE_CHECKING:
    import duckdb

#: Milliseconds over which the current rate of events is measured.
RATE_WINDOW_MS = 600_000
#: Entries fetched from the stream, or rows from the segments, per round trip.
PAGE = 5000
#: Each dimension's column, NULL where `RoutingEvent.value` gives MISSING, in `Dimension`'s order.
_GROUPED = ("event_type", "backend", "model", "node", "instance")
#: How each dimension's value is computed in SQL: what `RoutingEvent.value` gives.
_VALUE_SQL = {
    dimension: column if dimension is Dimension.EVENT_TYPE else f"coalesce({column}, '{MISSING}')"
    for dimension, column in zip(Dimension, _GROUPED, strict=True)
}
_REASONS = "fallback_reason"
#: After a stream id: written so that DuckDB can push `ms >= ?` down to row-group statistics.
_AFTER = " AND ms >= ? AND NOT (ms = ? AND seq <= ?)"
#: Stands for the snapshot's list of segment files among a query's parameters.
_FILES = object()


@dataclass(frozen=True)
class _Range:
    """A time range in stream-id milliseconds, `since` included, `until` not."""

    since_ms: int | None
    until_ms: int | None

    @classmethod
    def of(cls, time_range: TimeRange, now_ms: int | None = None) -> _Range:
        """`now_ms` (Redis's clock) ends an open range, so a write after it does not change the answer."""
        until = time_range.until_ms
        if until is None and now_ms is not None:
            until = now_ms + 1
        return cls(time_range.since_ms, until)


def _where(event_filter: EventFilter, time_range: _Range, *, joined: bool) -> tuple[str, list[Any]]:
    """The filter as SQL over a segment's columns, exactly as `EventFilter.matches` decides.

    `joined`: every file has the searched texts joined in `search_l` (segments.JOINED_FORMAT).
    """
    clauses, params = ["skip IS NULL"], list[Any]()
    clauses_time, params_time = _time_where(time_range)
    clauses += clauses_time
    params += params_time
    if event_filter.event_types:
        clauses.append(f"etype_u IN ({', '.join('?' for _ in event_filter.event_types)})")
        params += sorted(event_filter.event_types)
    for clause, value in (
        ("starts_with(model_l, ?)", event_filter.model),
        ("backend = ?", event_filter.backend),
        ("starts_with(instance, ?)", event_filter.instance),
        ("contains(node_l, ?)", event_filter.node),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if event_filter.trace_id is not None:
        trace = event_filter.trace_id
        binary = (
            bytes.fromhex(trace) if len(trace) == 32 and all(c in "0123456789abcdef" for c in trace) else None
        )
        clauses.append("(trace = ? OR trace_l = ?)")
        params += [binary, trace]
    if event_filter.q is not None:
        columns = ("search_l",) if joined and segments.SEPARATOR not in event_filter.q else segments.SEARCHED
        clauses.append("(" + " OR ".join(f"contains({column}, ?)" for column in columns) + ")")
        params += [event_filter.q] * len(columns)
    return " AND ".join(clauses), params


def _time_where(time_range: _Range) -> tuple[list[str], list[Any]]:
    clauses, params = [], list[Any]()
    if time_range.since_ms is not None:
        clauses.append("ms >= ?")
        params.append(time_range.since_ms)
    if time_range.until_ms is not None:
        clauses.append("ms < ?")
        params.append(time_range.until_ms)
    return clauses, params


def _skipped_where(time_range: _Range) -> tuple[str, list[Any]]:
    """The skipped entries in range, for a query branch of their own."""
    clauses, params = _time_where(time_range)
    return " AND ".join(["skip IS NOT NULL", *clauses]), params


def _in_range(entry_id: str, time_range: _Range) -> bool:
    ms = stream_key(entry_id)[0]
    since, until = time_range.since_ms, time_range.until_ms
    return (since is None or ms >= since) and (until is None or ms < until)


def _overlaps(segment: Segment, time_range: _Range) -> bool:
    since, until = time_range.since_ms, time_range.until_ms
    return (since is None or segment.max_ms >= since) and (until is None or segment.min_ms < until)


def bounded(counter: Counter[str], top: int) -> dict[str, Any]:
    """The top `top` values (by count, then name, so every process lists the same), the count
    of all the others beside them, and whether any were left out."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    named = dict(ranked[:top])
    return {
        "counts": named,
        "other": sum(n for _, n in ranked[top:]),
        "bounded": len(ranked) > top,
        "distinct": len(ranked),
    }


def _gap_json(gap: GapRecord) -> dict[str, Any]:
    return {
        "after_id": gap.after_id,
        "first_id": gap.first_id,
        "missed": gap.missed,
        "reset": gap.reset,
        "at_ms": gap.at_ms,
    }


@dataclass
class _Snapshot:
    """One consistent view: the manifest, its readable segments, and the stream after its last id."""

    manifest: Manifest
    files: list[Segment]
    tail: list[StreamEntry]
    pending_gap: GapRecord | None = None
    corrupt: list[str] = field(default_factory=list)

    @property
    def joined(self) -> bool:
        """Whether every file keeps the searched texts joined (see `_where`)."""
        return all(segment.format >= segments.JOINED_FORMAT for segment in self.files)

    def matching(self, event_filter: EventFilter, time_range: _Range) -> Iterable[tuple[str, RoutingEvent]]:
        """The tail's events that match, oldest first, with their ids."""
        for entry in self.tail:
            if (
                isinstance(entry.item, RoutingEvent)
                and _in_range(entry.id, time_range)
                and event_filter.matches(entry.item)
            ):
                yield entry.id, entry.item

    def skipped(self, time_range: _Range) -> int:
        """The tail's entries in range that are not routing events (foreign or malformed)."""
        foreign = (entry for entry in self.tail if not isinstance(entry.item, RoutingEvent))
        return sum(1 for entry in foreign if _in_range(entry.id, time_range))

    def gaps(self, time_range: _Range) -> list[dict[str, Any]]:
        found = [*self.manifest.gaps, *([self.pending_gap] if self.pending_gap else [])]
        since, until = time_range.since_ms, time_range.until_ms
        return [
            _gap_json(g)
            for g in found
            if (since is None or g.at_ms >= since) and (until is None or g.at_ms < until)
        ]


class History:
    """One stream's history as every process sees it: the newest manifest of the highest epoch,
    and after its last id, the stream itself (no entry twice, none missed at the seam)."""

    def __init__(self, client: redis.asyncio.Redis, stream: str, store: Store) -> None:
        self._client = client
        self._stream = stream
        self.store = store
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._lock = asyncio.Lock()
        self._connecting = threading.Lock()
        #: The stream's entries after `_tail_from`, decoded once and kept while they stay unindexed.
        self._tail: list[StreamEntry] = []
        self._tail_from = "0-0"
        self._snapshot: _Snapshot | None = None
        #: The stream's length and Redis's clock at the last answer, for the trimming warning.
        self._stream_length: int | None = None
        self._checked_ms = 0
        #: Segment files this reader found unreadable (cut short, replaced, not Parquet).
        self._corrupt: set[str] = set()

    @classmethod
    async def open(
        cls, client: redis.asyncio.Redis, stream: str, directory: Path | None = None
    ) -> History | None:
        """The history of `stream`, or None when no indexer has committed any yet.

        `directory`: the root holding one folder per stream (SOLLOL_HISTORY_DIR); None asks the
        lease (the indexer publishes its folder there) when the indexer runs on this host, then
        takes the setting's default. Keep the History: it holds the DuckDB connection and the
        stream's unindexed entries, decoded once.
        """
        folder = stream_folder(directory, stream) if directory is not None else None
        if folder is None:
            current = await holder(client, stream)
            if current is not None and current.host == socket.gethostname() and current.directory.is_dir():
                folder = current.directory
            else:
                folder = stream_folder(default_root(), stream)
        store = Store(folder)
        if await asyncio.to_thread(store.newest) is None:
            return None
        return cls(client, stream, store)

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        with self._connecting:  # queries run in worker threads: one connection, made once
            if self._connection is None:
                self._connection = segments.connect()
            return self._connection

    async def _snap(self) -> _Snapshot:
        """The newest manifest, then the stream after its last id (in that order: an entry
        committed in between is still in the stream, and read from there)."""
        async with self._lock:
            manifest = await asyncio.to_thread(self.store.newest)
            if manifest is None:
                manifest = Manifest()
            files, corrupt = await asyncio.to_thread(self._readable, manifest)
            tail, pending = await self._read_tail(manifest)
            self._snapshot = _Snapshot(manifest, files, tail, pending, corrupt)
            self._checked_ms = await self._redis_ms()
            return self._snapshot

    def _readable(self, manifest: Manifest) -> tuple[list[Segment], list[str]]:
        """The manifest's segments whose files are there at their committed size, and the others."""
        good, bad = [], []
        for segment in manifest.segments:
            try:
                size = self.store.segment_path(segment.file).stat().st_size
            except FileNotFoundError:
                size = -1
            if size != segment.bytes or segment.file in self._corrupt:
                bad.append(segment.file)
            else:
                good.append(segment)
        return good, bad + list(manifest.corrupt)

    async def _read_tail(self, manifest: Manifest) -> tuple[list[StreamEntry], GapRecord | None]:
        """The stream's entries after the manifest's last id, and entries trimmed before the
        indexer read them that it has not recorded yet."""
        info = await self._info()
        start = manifest.last_id
        last_generated = "0-0" if info is None else as_text(info["last-generated-id"])
        if stream_key(last_generated) < stream_key(start):
            start = "0-0"  # the stream was replaced and the indexer has not seen it yet: all of it is new
        if stream_key(start) < stream_key(self._tail_from):
            self._tail = []  # a new stream: what was kept came from the old one
        # What was kept runs on from `_tail_from` without a hole, so what follows `start` stays valid.
        self._tail = [entry for entry in self._tail if stream_key(entry.id) > stream_key(start)]
        self._tail_from = start
        lower = self._tail[-1].id if self._tail else start
        while True:
            raw: Any = await self._client.xrange(self._stream, min=f"({lower}", max="+", count=PAGE)
            if not raw:
                break
            self._tail.extend(await asyncio.to_thread(_decoded, raw))
            if len(raw) < PAGE:
                break
            lower = self._tail[-1].id
        self._stream_length = None if info is None else int(info["length"])
        return self._tail, self._pending_gap(manifest, info, start)

    def _pending_gap(self, manifest: Manifest, info: dict[str, Any] | None, start: str) -> GapRecord | None:
        if info is None or not info.get("first-entry") or start == "0-0":
            return None
        first_id = as_text(info["first-entry"][0])
        if stream_key(first_id) <= stream_key(start):
            return None
        added = info.get("entries-added")
        missed = None
        if added is not None and manifest.offset is not None:
            missed = int(added) - int(info["length"]) - manifest.offset
            if missed <= 0:
                return None
        return GapRecord(start, first_id, missed, False, stream_key(first_id)[0])

    async def _info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = await self._client.xinfo_stream(self._stream)
        except redis.ResponseError:
            return None
        return info

    async def _query(self, snapshot: _Snapshot, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Run `sql` over the snapshot's files (each `_FILES` in `params`, or the first parameter
        when there is none, is the list of them); a file that turns out unreadable is left out,
        remembered as corrupt and the query run again."""
        if _FILES not in params:
            params = [_FILES, *params]
        while True:
            files = [str(self.store.segment_path(s.file)) for s in snapshot.files]
            if not files:
                return []
            try:
                return await asyncio.to_thread(self._run, sql, [files if p is _FILES else p for p in params])
            except Exception:
                bad = await asyncio.to_thread(self._unreadable, files)
                if not bad:
                    raise
                self._corrupt.update(bad)
                snapshot.corrupt.extend(bad)
                snapshot.files = [s for s in snapshot.files if s.file not in bad]

    def _run(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cursor = self._duckdb().cursor()
        try:
            return cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()

    def _unreadable(self, files: list[str]) -> set[str]:
        bad = set()
        for name in files:
            try:
                self._run("SELECT count(*) FROM read_parquet(?)", [name])
            except Exception:  # any failure to read the file is what makes it unusable
                bad.add(Path(name).name)
        return bad

    @staticmethod
    def _limit_files(snapshot: _Snapshot, time_range: _Range) -> _Snapshot:
        files = [s for s in snapshot.files if _overlaps(s, time_range)]
        return _Snapshot(snapshot.manifest, files, snapshot.tail, snapshot.pending_gap, snapshot.corrupt)

    async def stats(
        self, event_filter: EventFilter, public_range: TimeRange, *, now_ms: int, top: int = 50
    ) -> dict[str, Any]:
        """Counts of the matching events in range.

        `{"events", "skipped", "by_event_type", "by_backend", "by_model", "by_node", "by_instance",
        "top_fallback_reasons", "gaps", "start_ms", "corrupt"}`: each `by_*` and the reasons are
        `{"counts": {value: n}, "other": n, "bounded": bool, "distinct": n}` (the top `top` values;
        `other` counts the rest, so a value named "other" stays distinguishable); `gaps` are
        `{"after_id", "first_id", "missed", "reset", "at_ms"}` in range (missed None: unknown).
        `now_ms` (Redis's clock) bounds an open range, so a later write does not change the answer.
        """
        time_range = _Range.of(public_range, now_ms)
        snapshot = self._limit_files(await self._snap(), time_range)
        where, params = _where(event_filter, time_range, joined=snapshot.joined)
        skipped_where, skipped_params = _skipped_where(time_range)
        counts = {name: Counter[str]() for name in [*(d.value for d in Dimension), _REASONS]}
        # GROUPING SETS scan the files once for every dimension: over 10,000,000 events three times
        # as fast as one GROUP BY per dimension. A fallback's reason is grouped as `r`, NULL for the
        # other types; `grouping()` tells the sets apart (a bit set for each column not grouped).
        columns = [*_GROUPED, "r"]
        fallback = EventType.FALLBACK_TRIGGERED.value
        sql = (
            f"SELECT grouping({', '.join(columns)}), {', '.join(columns)}, count(*) "
            f"FROM (SELECT {', '.join(_GROUPED)}, CASE WHEN event_type = '{fallback}' "
            f"THEN coalesce(reason, '{MISSING}') END AS r FROM read_parquet(?) WHERE {where}) "
            f"GROUP BY GROUPING SETS ({', '.join(f'({column})' for column in columns)}) "
            f"UNION ALL SELECT -1, {'NULL, ' * len(columns)}count(*) FROM read_parquet(?) "
            f"WHERE {skipped_where}"
        )
        names = [*(d.value for d in Dimension), _REASONS]
        every, skipped = len(columns) - 1, 0
        grouped = {(1 << (every + 1)) - 1 - (1 << (every - i)): i for i in range(len(columns))}
        for row in await self._query(snapshot, sql, [_FILES, *params, _FILES, *skipped_params]):
            *key, count = row
            if key[0] == -1:
                skipped = count
                continue
            index = grouped[key[0]]
            value = key[1 + index]
            if index == every and value is None:
                continue  # the events that are not fallbacks
            counts[names[index]][MISSING if value is None else value] += count
        skipped += snapshot.skipped(time_range)
        for _, event in snapshot.matching(event_filter, time_range):
            for dimension in Dimension:
                counts[dimension.value][event.value(dimension)] += 1
            if event.event_type == EventType.FALLBACK_TRIGGERED:
                counts[_REASONS][event.text("reason") or MISSING] += 1
        return {
            "events": sum(counts[Dimension.EVENT_TYPE.value].values()),
            "skipped": skipped,
            **{f"by_{d.value}": bounded(counts[d.value], top) for d in Dimension},
            "top_fallback_reasons": bounded(counts[_REASONS], top),
            "gaps": snapshot.gaps(time_range),
            "start_ms": self._start_ms(snapshot),
            "corrupt": sorted(set(snapshot.corrupt)),
        }

    async def span(
        self, event_filter: EventFilter, public_range: TimeRange, *, now_ms: int
    ) -> tuple[int, int] | None:
        """The times (stream-id milliseconds) of the first and the last matching event in range; None
        when none matches. One scan of `ms` beside the filter's columns: no event is read."""
        time_range = _Range.of(public_range, now_ms)
        snapshot = self._limit_files(await self._snap(), time_range)
        where, params = _where(event_filter, time_range, joined=snapshot.joined)
        rows = await self._query(
            snapshot, f"SELECT min(ms), max(ms) FROM read_parquet(?) WHERE {where}", params
        )
        found = [ms for row in rows for ms in row if ms is not None]
        found += [stream_key(entry_id)[0] for entry_id, _ in snapshot.matching(event_filter, time_range)]
        return (min(found), max(found)) if found else None

    async def timeline(
        self, event_filter: EventFilter, public_range: TimeRange, *, bucket_ms: int, by: str, top: int = 50
    ) -> dict[str, Any]:
        """Counts per bucket (aligned to `bucket_ms` on the stream-id clock) per value of `by`.

        `{"bucket_ms", "by", "buckets": [{"start_ms", "counts": {value: n}, "other": n}],
        "values": [the top values over the whole range], "other": n, "bounded": bool, "skipped": n,
        "start_ms", "gaps": [...], "corrupt": [...]}`; only buckets holding events are listed, oldest
        first; `start_ms` is where history begins. ValueError for an unknown `by`.
        """
        dimension = Dimension(by)
        if bucket_ms < 1:
            raise ValueError(f"bucket_ms must be at least 1, not {bucket_ms}")
        time_range = _Range.of(public_range)
        snapshot = self._limit_files(await self._snap(), time_range)
        where, params = _where(event_filter, time_range, joined=snapshot.joined)
        skipped_where, skipped_params = _skipped_where(time_range)
        # Each bucket comes back as one row of two lists (its values and their counts), and the
        # totals over the range as one more (-2): 120 rows for 24,000 cells, turned into the answer
        # at C speed. The skipped entries in range are row -1.
        sql = (
            f"WITH cells AS MATERIALIZED (SELECT ms // {bucket_ms} AS b, {_VALUE_SQL[dimension]} AS v, "
            f"count(*) AS n FROM read_parquet(?) WHERE {where} GROUP BY ALL) "
            "SELECT b, list(v), list(n) FROM cells GROUP BY b "
            "UNION ALL SELECT -2, list(v), list(n) "
            "FROM (SELECT v, sum(n)::BIGINT AS n FROM cells GROUP BY v) "
            f"UNION ALL SELECT -1, [], [count(*)] FROM read_parquet(?) WHERE {skipped_where}"
        )
        columns: dict[int, tuple[list[str], list[int]]] = {}
        rows = await self._query(snapshot, sql, [_FILES, *params, _FILES, *skipped_params])
        for index, values, counts in rows:
            columns[index] = (values or [], counts or [])
        skipped = sum(columns.pop(-1, ([], []))[1]) + snapshot.skipped(time_range)
        totals: Counter[str] = Counter(dict(zip(*columns.pop(-2, ([], [])), strict=True)))
        tail: dict[int, Counter[str]] = {}
        for entry_id, event in snapshot.matching(event_filter, time_range):
            value = event.value(dimension)
            tail.setdefault(stream_key(entry_id)[0] // bucket_ms, Counter())[value] += 1
            totals[value] += 1
        summary = bounded(totals, top)
        named = summary["counts"]
        buckets = []
        for index in sorted(columns.keys() | tail.keys()):
            values, counts = columns.get(index, ([], []))
            cell = dict(zip(values, counts, strict=True))
            for value, count in tail.get(index, {}).items():
                cell[value] = cell.get(value, 0) + count
            kept = {value: count for value, count in cell.items() if value in named}
            other = sum(cell.values()) - sum(kept.values())
            buckets.append({"start_ms": index * bucket_ms, "counts": kept, "other": other})
        return {
            "bucket_ms": bucket_ms,
            "by": dimension.value,
            "buckets": buckets,
            "values": list(named),
            "other": summary["other"],
            "bounded": summary["bounded"],
            "skipped": skipped,
            "start_ms": self._start_ms(snapshot),
            "gaps": snapshot.gaps(time_range),
            "corrupt": sorted(set(snapshot.corrupt)),
        }

    async def page(
        self, event_filter: EventFilter, public_range: TimeRange, *, before: str | None = None, limit: int
    ) -> list[StreamEntry]:
        """Up to `limit` matching entries before the id `before` (exclusive; None: the newest),
        newest first, from the stream back into the segments. Skipped entries match no filter,
        so none are returned."""
        time_range = _Range.of(public_range)
        snapshot = self._limit_files(await self._snap(), time_range)
        bound = None if before is None else stream_key(before)
        found = [
            StreamEntry(entry_id, event)
            for entry_id, event in reversed(list(snapshot.matching(event_filter, time_range)))
            if bound is None or stream_key(entry_id) < bound
        ][:limit]
        if len(found) >= limit:
            return found
        return found + await self._run_of(
            snapshot, event_filter, time_range, limit - len(found), before=bound
        )

    async def events(self, event_filter: EventFilter, public_range: TimeRange) -> AsyncIterator[StreamEntry]:
        """Every matching entry in range, oldest first, read in bounded batches."""
        time_range = _Range.of(public_range)
        snapshot = self._limit_files(await self._snap(), time_range)
        after: tuple[int, int] | None = None
        while batch := await self._run_of(snapshot, event_filter, time_range, PAGE, after=after):
            for entry in batch:
                yield entry
            after = stream_key(batch[-1].id)
        for entry_id, event in snapshot.matching(event_filter, time_range):
            yield StreamEntry(entry_id, event)

    async def _run_of(
        self,
        snapshot: _Snapshot,
        event_filter: EventFilter,
        time_range: _Range,
        limit: int,
        *,
        before: tuple[int, int] | None = None,
        after: tuple[int, int] | None = None,
    ) -> list[StreamEntry]:
        """The next `limit` matching entries of the segments before `before` (newest first) or
        after `after` (oldest first). First the ids alone (narrow columns), then the events between
        the first and last of them: the wide `doc` column is read for those rows only, and bounds
        on `ms` let DuckDB skip row groups by their statistics."""
        where, params = _where(event_filter, time_range, joined=snapshot.joined)
        order = "ms, seq" if before is None else "ms DESC, seq DESC"
        for clause, key in ((" AND ms <= ? AND NOT (ms = ? AND seq >= ?)", before), (_AFTER, after)):
            if key is not None:
                where += clause
                params += [key[0], key[0], key[1]]
        ids = await self._query(
            snapshot,
            f"SELECT ms, seq FROM read_parquet(?) WHERE {where} ORDER BY {order} LIMIT {limit}",
            params,
        )
        if not ids:
            return []
        low, high = sorted([ids[0], ids[-1]])
        rows = await self._query(
            snapshot,
            f"SELECT {segments.ENTRY_COLUMNS} FROM read_parquet(?) WHERE {where} AND ms BETWEEN ? AND ? "
            f"AND NOT (ms = ? AND seq < ?) AND NOT (ms = ? AND seq > ?) ORDER BY {order} LIMIT {limit}",
            [*params, low[0], high[0], low[0], low[1], high[0], high[1]],
        )
        return await asyncio.to_thread(_entries, rows)

    async def start_ms(self) -> int | None:
        """Where history begins now (None: it holds nothing yet)."""
        return self._start_ms(await self._snap())

    @staticmethod
    def _start_ms(snapshot: _Snapshot) -> int | None:
        """Where history begins: its oldest segment, or the stream's oldest unindexed entry."""
        starts = [s.min_ms for s in snapshot.files] + [stream_key(e.id)[0] for e in snapshot.tail[:1]]
        return min(starts) if starts else None

    async def _redis_ms(self) -> int:
        seconds, micros = await self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def _trim_warning(self, snapshot: _Snapshot) -> str | None:
        """The indexer's rule, judged from here: the events of the last minutes, and how long
        the newest committed position is behind Redis's clock."""
        since = self._checked_ms - RATE_WINDOW_MS
        recent = sum(1 for e in snapshot.tail if stream_key(e.id)[0] >= since) + sum(
            s.rows * (s.max_ms - max(s.min_ms, since) + 1) // (s.max_ms - s.min_ms + 1)
            for s in snapshot.files
            if s.max_ms >= since
        )
        behind_ms = self._checked_ms - max(
            stream_key(snapshot.manifest.last_id)[0], snapshot.manifest.updated_ms
        )
        behind = max(0, behind_ms) / 1000 + FLUSH_SECONDS + LEASE_MS / 1000
        return trim_warning(self._stream_length, recent * 1000 / RATE_WINDOW_MS, behind)

    def status(self) -> dict[str, Any]:
        """What the history holds and costs, as of the last answer: start, events, size on disk,
        bytes a day at the current rate, corrupt files and gaps."""
        snapshot = self._snapshot
        if snapshot is None:
            return {"state": "not read yet", "directory": str(self.store.folder)}
        files = snapshot.files
        size = sum(s.bytes for s in files)
        rows = sum(s.rows for s in files)
        newest = max((s.max_ms for s in files), default=None)
        per_day = None
        if newest is not None and rows:
            recent = [s for s in files if s.min_ms >= newest - DAY_MS]
            span_ms = max(newest - min((s.min_ms for s in recent), default=newest), 60_000)
            per_day = round(sum(s.rows for s in recent) * DAY_MS / span_ms * size / rows)
        return {
            "directory": str(self.store.folder),
            "start_ms": self._start_ms(snapshot),
            "indexed_to": snapshot.manifest.last_id,
            "unindexed": len(snapshot.tail),
            "segments": len(files),
            "events": sum(s.events for s in files),
            "bytes": size,
            "bytes_per_event": round(size / rows, 1) if rows else None,
            "bytes_per_day": per_day,
            "gaps": len(snapshot.manifest.gaps) + (snapshot.pending_gap is not None),
            "corrupt": sorted(set(snapshot.corrupt)),
            "corrupt_manifests": snapshot.manifest.skipped_manifests,
            "trim_warning": self._trim_warning(snapshot),
        }


def _decoded(raw: list[Any]) -> list[StreamEntry]:
    return [StreamEntry(as_text(entry_id), decode(fields)) for entry_id, fields in raw]


def _entries(rows: list[tuple[Any, ...]]) -> list[StreamEntry]:
    return [segments.entry_of(row[0], row[1], row[2], row[3], row[4:]) for row in rows]
