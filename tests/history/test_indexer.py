"""The indexer copies the stream exactly once whatever happens to it, its lease or its folder."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
from history.harness import (
    FAST,
    full_scan,
    index_all,
    indexed_to,
    indexer_process,
    indexing,
    matching,
    newest,
    wait_until,
    write_varied,
)
from redis.crc import key_slot
from waiting import eventually

from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.history import segments
from sollol_otel.history.indexer import Indexer, State
from sollol_otel.history.lease import lease_keys
from sollol_otel.history.query import History
from sollol_otel.history.store import Manifest, Segment, Store, stream_folder
from sollol_otel.redis.entries import StreamEntry
from sollol_otel.wire import Skipped

NOW_MS = int(time.time() * 1000)
#: Longer than a default lease (6 s) plus a standby's poll, on a loaded machine.
TAKEOVER_TIMEOUT = 40.0


async def _history(redis_url: str, stream: str, root: Path) -> list[StreamEntry]:
    """Every event history holds, oldest first (the count `stats` gives agrees)."""
    history = await History.open(redis.asyncio.Redis.from_url(redis_url), stream, root)
    assert history is not None
    events = [e async for e in history.events(EventFilter(), TimeRange())]
    stats = await history.stats(EventFilter(), TimeRange(), now_ms=int(time.time() * 1000) + 60_000)
    assert stats["events"] == len(events)
    return events


def _events(entries: list[StreamEntry]) -> list[StreamEntry]:
    return [e for e in entries if not isinstance(e.item, Skipped)]


def _holder_pid(client: redis.Redis, stream: str) -> int | None:
    raw = client.hget(lease_keys(stream)[2], "pid")
    return None if raw is None else int(raw)


def _last_id(client: redis.Redis, stream: str) -> str:
    return str(client.xinfo_stream(stream)["last-generated-id"].decode())


def _write_now(client: redis.Redis, stream: str, count: int, first: int = 0) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(first, first + count):
        pipe.xadd(
            stream, {"event": json.dumps({"event_type": "ROUTE_DECISION", "model": f"m{i % 5}", "i": i})}
        )
    pipe.execute()


def _holds(client: redis.Redis, stream: str, process: subprocess.Popen[bytes]) -> None:
    eventually(lambda: _holder_pid(client, stream) == process.pid, TAKEOVER_TIMEOUT, what="the lease")


def _caught_up(client: redis.Redis, stream: str, root: Path) -> None:
    eventually(lambda: indexed_to(root, stream, _last_id(client, stream)), TAKEOVER_TIMEOUT, what="caught up")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop as a service manager does: what is buffered is committed, and the exit is clean."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0


@pytest.fixture
def two_logs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    yield tmp_path / "a.log", tmp_path / "b.log"


async def test_a_standby_indexer_takes_over_when_the_holder_is_killed(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path, two_logs: tuple[Path, Path]
) -> None:
    _write_now(redis_client, stream, 300)
    with indexer_process(redis_url, stream, root, two_logs[0]) as first:
        _holds(redis_client, stream, first)
        with indexer_process(redis_url, stream, root, two_logs[1]) as second:
            _caught_up(redis_client, stream, root)
            first.send_signal(signal.SIGKILL)
            _write_now(redis_client, stream, 300, first=300)
            _holds(redis_client, stream, second)
            _caught_up(redis_client, stream, root)
            _stop(second)
    assert await _history(redis_url, stream, root) == full_scan(redis_client, stream)


async def test_a_paused_former_holder_never_commits_after_the_lease_moved_on(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path, two_logs: tuple[Path, Path]
) -> None:
    _write_now(redis_client, stream, 200)
    with indexer_process(redis_url, stream, root, two_logs[0]) as first:
        _caught_up(redis_client, stream, root)
        first_epoch = newest(root, stream)
        assert first_epoch is not None
        _write_now(redis_client, stream, 50, first=200)  # read by the holder, not yet committed when paused
        first.send_signal(signal.SIGSTOP)
        try:
            with indexer_process(redis_url, stream, root, two_logs[1]) as second:
                _holds(redis_client, stream, second)
                _caught_up(redis_client, stream, root)
                store = Store(stream_folder(root, stream))
                before = {name for *_, name in store.manifest_names()}
                first.send_signal(signal.SIGCONT)
                eventually(lambda: "standby" in two_logs[0].read_text(), TAKEOVER_TIMEOUT, what="standing by")
                _write_now(redis_client, stream, 50, first=250)
                _caught_up(redis_client, stream, root)
                late = [
                    name
                    for epoch, _, name in store.manifest_names()
                    if epoch == first_epoch.epoch and name not in before
                ]
                assert late == []
                _stop(second)
        finally:
            first.send_signal(signal.SIGCONT)
    manifest = newest(root, stream)
    assert manifest is not None and manifest.epoch > first_epoch.epoch
    assert await _history(redis_url, stream, root) == full_scan(redis_client, stream)


async def test_an_indexer_killed_mid_segment_resumes_with_nothing_twice_or_missed(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path, two_logs: tuple[Path, Path]
) -> None:
    _write_now(redis_client, stream, 500)
    with indexer_process(redis_url, stream, root, two_logs[0]) as first:
        _caught_up(redis_client, stream, root)
        _write_now(redis_client, stream, 500, first=500)  # read into its buffer, not yet committed
        _holds(redis_client, stream, first)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert newest(root, stream) is not None
    with indexer_process(redis_url, stream, root, two_logs[1]) as second:
        _caught_up(redis_client, stream, root)
        _stop(second)
    assert await _history(redis_url, stream, root) == full_scan(redis_client, stream)


async def test_a_stream_reset_is_indexed_from_its_new_beginning(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    before = write_varied(redis_client, stream, 100, start_ms=NOW_MS - 600_000)
    old = full_scan(redis_client, stream)
    async with indexing(redis_url, stream, root) as indexer:
        await wait_until(lambda: indexed_to(root, stream, before[-1]))
        redis_client.delete(stream)
        after = write_varied(redis_client, stream, 60, start_ms=NOW_MS - 1_200_000)  # ids go back
        await wait_until(lambda: indexed_to(root, stream, after[-1]))
        assert indexer.state is State.INDEXING
    manifest = newest(root, stream)
    assert manifest is not None and [g.reset for g in manifest.gaps] == [True]
    entries = await _history(redis_url, stream, root)
    assert sorted(entries, key=lambda e: e.id) == sorted(
        _events(old + full_scan(redis_client, stream)), key=lambda e: e.id
    )


@pytest.mark.redis7
async def test_entries_trimmed_before_they_were_indexed_are_a_gap_of_their_number(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    _write_now(redis_client, stream, 50)
    await index_all(redis_url, stream, root)
    _write_now(redis_client, stream, 100, first=50)
    redis_client.xtrim(stream, maxlen=10, approximate=False)  # 90 never indexed
    await index_all(redis_url, stream, root)
    history = await History.open(redis.asyncio.Redis.from_url(redis_url), stream, root)
    assert history is not None
    stats = await history.stats(EventFilter(), TimeRange(), now_ms=int(time.time() * 1000) + 60_000)
    assert [gap["missed"] for gap in stats["gaps"]] == [90]
    assert stats["events"] == 60


async def test_a_corrupt_segment_is_left_out_counted_and_reported(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    write_varied(redis_client, stream, 40, start_ms=NOW_MS - 600_000)
    await index_all(redis_url, stream, root)
    write_varied(redis_client, stream, 30, start_ms=NOW_MS - 300_000)
    await index_all(redis_url, stream, root)
    manifest = newest(root, stream)
    assert manifest is not None and len(manifest.segments) == 2
    broken = Store(stream_folder(root, stream)).segment_path(manifest.segments[0].file)
    broken.write_bytes(b"\0" * broken.stat().st_size)  # same size: only reading it shows the damage
    history = await History.open(redis.asyncio.Redis.from_url(redis_url), stream, root)
    assert history is not None
    stats = await history.stats(EventFilter(), TimeRange(), now_ms=NOW_MS + 60_000)
    assert stats["events"] == manifest.segments[1].events
    assert stats["corrupt"] == [broken.name]
    assert history.status()["corrupt"] == [broken.name]
    await index_all(redis_url, stream, root)  # a new holder checks every segment it takes over
    after = newest(root, stream)
    assert after is not None and [s.file for s in after.segments] == [manifest.segments[1].file]
    assert after.corrupt == (f"{broken.name} ({manifest.segments[0].rows} rows)",)


async def test_retention_drops_segments_past_the_age_limit(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    write_varied(redis_client, stream, 20, start_ms=NOW_MS - 3 * 86_400_000)
    await index_all(redis_url, stream, root)
    recent = write_varied(redis_client, stream, 20, start_ms=NOW_MS - 60_000)
    options = dataclasses.replace(FAST, retention_ms=86_400_000)
    async with indexing(redis_url, stream, root, options):
        await wait_until(lambda: _only_from(root, stream, recent[0]))


def _only_from(root: Path, stream: str, first_id: str) -> bool:
    manifest = newest(root, stream)
    return manifest is not None and [s.first_id for s in manifest.segments] == [first_id]


async def test_retention_by_size_drops_the_oldest_segments_first(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    firsts = []
    for part in range(3):
        firsts.append(write_varied(redis_client, stream, 30, start_ms=NOW_MS - (3 - part) * 600_000)[0])
        await index_all(redis_url, stream, root)
    manifest = newest(root, stream)
    assert manifest is not None and len(manifest.segments) == 3
    newest_two = sum(s.bytes for s in manifest.segments[1:])
    options = dataclasses.replace(FAST, max_bytes=newest_two)
    async with indexing(redis_url, stream, root, options):
        await wait_until(lambda: _firsts(root, stream) == firsts[1:])


def _firsts(root: Path, stream: str) -> list[str]:
    manifest = newest(root, stream)
    return [] if manifest is None else [s.first_id for s in manifest.segments]


async def _eight_small_segments(redis_url: str, redis_client: redis.Redis, stream: str, root: Path) -> None:
    """Eight commits of 25 events a minute apart, with merging held off until a later indexer."""
    for part in range(8):
        write_varied(redis_client, stream, 25, start_ms=NOW_MS - 3_600_000 + part * 60_000)
        await index_all(redis_url, stream, root, dataclasses.replace(FAST, maintenance_seconds=3600))


async def test_small_segments_are_merged_and_answers_stay_exact(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    await _eight_small_segments(redis_url, redis_client, stream, root)
    manifest = newest(root, stream)
    assert manifest is not None and len(manifest.segments) == 8
    async with indexing(redis_url, stream, root):
        await wait_until(lambda: len(_firsts(root, stream)) == 1)
    assert await _history(redis_url, stream, root) == _events(full_scan(redis_client, stream))


def test_readers_take_the_highest_epoch_whatever_a_lower_one_writes_later(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.create()
    store.commit(Manifest(epoch=2, seq=0, last_id="5-0"))
    store.commit(Manifest(epoch=1, seq=7, last_id="9-0"))  # a former holder waking up
    found = store.newest()
    assert found is not None and (found.epoch, found.last_id) == (2, "5-0")


def test_a_half_written_manifest_is_passed_over_and_counted(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.create()
    store.commit(Manifest(epoch=1, seq=0, last_id="5-0"))
    (store.manifests / f"{1:012d}-{1:012d}.json").write_bytes(b'{"epoch": 1, "se')
    found = store.newest()
    assert found is not None and (found.last_id, found.skipped_manifests) == ("5-0", 1)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs (mounting needs root; skipped where it is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_stops_the_indexer_with_a_clear_state_and_leaves_the_stream_alone(
    redis_url: str, redis_client: redis.Redis, stream: str, tiny_disk: Path
) -> None:
    pipe = redis_client.pipeline(transaction=False)
    for _ in range(400):
        pipe.xadd(
            stream, {"event": json.dumps({"event_type": "ROUTE_DECISION", "reason": os.urandom(2000).hex()})}
        )
    pipe.execute()
    async with indexing(redis_url, stream, tiny_disk) as indexer:
        await wait_until(lambda: indexer.state is State.STORAGE_FAILED)
        assert "No space left on device" in indexer.detail or "space" in indexer.detail.lower()
        assert indexer.status()["state"] == "storage_failed"
    assert redis_client.xlen(stream) == 400
    manifest = newest(tiny_disk, stream)
    assert manifest is None or manifest.last_id != _last_id(redis_client, stream)


@pytest.mark.parametrize("name", ["sollol:routing_stream", "{fleet-a}:routing", "odd{}name"])
def test_the_lease_keys_live_in_the_streams_cluster_slot(name: str) -> None:
    assert {key_slot(key.encode()) for key in lease_keys(name)} == {
        key_slot(name.encode())
    } or name == "odd{}name"
    assert len({key_slot(key.encode()) for key in lease_keys(name)}) == 1


def test_a_former_holder_waking_up_deletes_none_of_the_new_holders_files(
    redis_url: str, tmp_path: Path
) -> None:
    indexer = Indexer(redis.asyncio.Redis.from_url(redis_url), "s", tmp_path, FAST)
    indexer.store.create()
    indexer.manifest = Manifest(epoch=1)
    indexer._lease.epoch = 1  # what it held before its pause
    indexer.store.commit(Manifest(epoch=2, segments=(_segment("000000000002-named.parquet"),)))
    files = ["000000000002-named.parquet", "000000000002-later.parquet", "000000000001-orphan.parquet"]
    for name in files:
        path = indexer.store.segment_path(name)
        path.write_bytes(b"x")
        os.utime(path, (0, 0))  # long past the grace time
    indexer._delete_unused(set(), time.time() * 1000)
    assert sorted(p.name for p in indexer.store.segments.iterdir()) == sorted(files[:2])


def _segment(name: str) -> Segment:
    return Segment(name, rows=1, events=1, first_id="1-0", last_id="1-0", min_ms=1, max_ms=1, bytes=1)


def _as_first_format(root: Path, stream: str) -> None:
    """Rewrite every segment as the first layout wrote it (no joined search column, no `format`)."""
    store = Store(stream_folder(root, stream))
    manifest = store.newest()
    assert manifest is not None
    connection = segments.connect()
    rewritten = []
    for segment in manifest.segments:
        path = store.segment_path(segment.file)
        connection.execute(
            f"COPY (SELECT * EXCLUDE (search_l) FROM read_parquet('{path}')) TO '{path}.old' "
            f"({segments.PARQUET_OPTIONS})"
        )
        os.replace(f"{path}.old", path)
        rewritten.append(dataclasses.replace(segment, bytes=path.stat().st_size, format=1))
    store.commit(manifest.next(manifest.epoch, segments=tuple(rewritten)))


async def test_segments_of_the_first_layout_answer_a_search_exactly_and_are_upgraded_when_merged(
    redis_url: str, redis_client: redis.Redis, stream: str, root: Path
) -> None:
    await _eight_small_segments(redis_url, redis_client, stream, root)
    _as_first_format(root, stream)
    search = EventFilter.build(q="überlast")
    expected = matching(full_scan(redis_client, stream), search, TimeRange())
    assert await _found(redis_url, stream, root, search) == expected
    async with indexing(redis_url, stream, root):
        await wait_until(lambda: len(_firsts(root, stream)) == 1)
    manifest = newest(root, stream)
    assert manifest is not None and manifest.segments[0].format == segments.FORMAT
    assert await _found(redis_url, stream, root, search) == expected


async def _found(redis_url: str, stream: str, root: Path, event_filter: EventFilter) -> list[StreamEntry]:
    """The entries history returns for `event_filter`, after checking `stats` counts as many."""
    history = await History.open(redis.asyncio.Redis.from_url(redis_url), stream, root)
    assert history is not None
    found = [e async for e in history.events(event_filter, TimeRange())]
    stats = await history.stats(event_filter, TimeRange(), now_ms=int(time.time() * 1000) + 60_000)
    assert stats["events"] == len(found) > 0
    return found
