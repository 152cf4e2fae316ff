"""The stream reader's gap accounting: what a reader that was away can say about what it missed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio
from sollol_events import sollol_event, write_ahead

from sollol_otel.redis.clock import id_ms
from sollol_otel.redis.entries import Gap, StreamEntry
from sollol_otel.redis.stream import Position, StreamReader


def write(client: redis.Redis, stream: str, numbers: range, maxlen: int | None = None) -> list[str]:
    fields = ({"event": json.dumps(sollol_event(n=n))} for n in numbers)
    return [client.xadd(stream, f, maxlen=maxlen, approximate=False).decode() for f in fields]


def gaps(items: list[StreamEntry | Gap]) -> list[Gap]:
    return [item for item in items if isinstance(item, Gap)]


def numbers(items: list[StreamEntry | Gap]) -> list[int]:
    return [item.item.fields["n"] for item in items if isinstance(item, StreamEntry)]  # type: ignore[union-attr]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


def redis_counts_entries(client: redis.Redis) -> bool:
    """Redis 7 keeps `entries-added`, which exact counts need; 6.2 only tells that a gap exists."""
    return int(str(client.info("server")["redis_version"]).split(".")[0]) >= 7


async def test_a_reader_that_kept_up_sees_no_gap(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    reader = StreamReader(client, keys[0])
    await reader.start_live()
    write(redis_client, keys[0], range(5))
    items = await reader.read(block_ms=100)
    assert gaps(items) == [] and numbers(items) == [0, 1, 2, 3, 4]


async def test_entries_trimmed_while_away_are_counted_exactly(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    reader = StreamReader(client, keys[0])
    await reader.start_live()
    write(redis_client, keys[0], range(3))
    assert numbers(await reader.read(block_ms=100)) == [0, 1, 2]
    write(redis_client, keys[0], range(3, 53), maxlen=10)  # 40 of the 50 new ones are trimmed away
    items = await reader.read(block_ms=100)
    (gap,) = gaps(items)
    assert numbers(items) == list(range(43, 53))
    assert gap.missed == (40 if redis_counts_entries(redis_client) else None)
    assert not gap.reset


async def test_a_gap_is_reported_once_not_on_every_later_read(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    reader = StreamReader(client, keys[0])
    await reader.start_live()
    write(redis_client, keys[0], range(20), maxlen=5)
    assert len(gaps(await reader.read(block_ms=100))) == 1
    write(redis_client, keys[0], range(20, 22), maxlen=5)
    items = await reader.read(block_ms=100)
    assert gaps(items) == [] and numbers(items) == [20, 21]


async def test_a_deleted_stream_is_a_reset_and_the_new_one_is_read_from_its_start(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    reader = StreamReader(client, keys[0])
    await reader.start_live()
    write(redis_client, keys[0], range(3))
    await reader.read(block_ms=100)
    redis_client.delete(keys[0])
    write(redis_client, keys[0], range(100, 101))
    (gap,) = gaps(await reader.read(block_ms=100))
    assert gap.reset and gap.missed is None
    assert numbers(await reader.read(block_ms=100)) == [100]


def replace_with_copy(client: redis.Redis, stream: str, ids: list[str], kept: int) -> None:
    """What a failover to a replica that lacked the newest entries leaves: the same ids, fewer of them."""
    client.delete(stream)
    for n, entry_id in enumerate(ids[:kept]):
        client.xadd(stream, {"event": json.dumps(sollol_event(n=n))}, id=entry_id)


async def test_a_stream_replaced_by_a_copy_lacking_our_newest_entries_repeats_nothing(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    reader = StreamReader(client, keys[0])
    await reader.start_live()
    ids = write(redis_client, keys[0], range(5))
    assert numbers(await reader.read(block_ms=100)) == [0, 1, 2, 3, 4]
    replace_with_copy(redis_client, keys[0], ids, kept=3)
    (gap,) = gaps(await reader.read(block_ms=100))
    assert gap.reset and gap.missed is None
    write(redis_client, keys[0], range(5, 7))
    assert numbers(await reader.read(block_ms=100)) == [5, 6]


async def test_a_resume_point_missing_from_a_replaced_stream_is_noticed_though_newer_entries_follow(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    ids = write(redis_client, keys[0], range(5))
    replace_with_copy(redis_client, keys[0], ids, kept=3)
    after = id_ms(ids[4]) + 1  # newer than our id, even when all five were written within one millisecond
    for n in range(10, 20):  # more entries than we had seen: counts alone cannot tell
        redis_client.xadd(keys[0], {"event": json.dumps(sollol_event(n=n))}, id=f"{after + n}-0")
    reader = StreamReader(client, keys[0], Position(ids[4], offset=5))  # a client resuming after a failover
    (gap,) = gaps(await reader.read(block_ms=100))
    assert gap.reset and gap.missed is None
    assert numbers(await reader.read(block_ms=100)) == list(range(10, 20))


async def test_a_resume_point_from_outside_reports_a_gap_of_unknown_size(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    ids = write(redis_client, keys[0], range(30), maxlen=10)
    reader = StreamReader(client, keys[0], Position(ids[0], offset=None))  # e.g. a browser's Last-Event-ID
    items = await reader.read(block_ms=100)
    (gap,) = gaps(items)
    assert gap.missed is None and gap.after_id == ids[0]
    assert numbers(items) == list(range(20, 30))


async def test_history_places_the_reader_so_follow_continues_without_a_gap_or_repeat(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], range(10))
    reader = StreamReader(client, keys[0])
    assert [e.item.fields["n"] for e in await reader.history(3)] == [7, 8, 9]  # type: ignore[union-attr]
    write(redis_client, keys[0], range(10, 12))
    items = await reader.read(block_ms=100)
    assert gaps(items) == [] and numbers(items) == [10, 11]


async def test_a_new_stream_whose_ids_lie_below_ours_is_read_from_its_start(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    reader = StreamReader(client, keys[0])
    await reader.start_live()
    write_ahead(redis_client, keys[0], *(sollol_event(n=n) for n in range(3)))
    assert numbers(await reader.read(block_ms=100)) == [0, 1, 2]
    redis_client.delete(keys[0])
    write(redis_client, keys[0], range(100, 103))  # Redis's clock: an hour below the reader's last id
    items = await reader.read(block_ms=100)
    (gap,) = gaps(items)
    assert gap.reset
    assert numbers(items + await reader.read(block_ms=100)) == [100, 101, 102]
    write(redis_client, keys[0], range(103, 105))
    assert numbers(await reader.read(block_ms=100)) == [103, 104]


async def test_a_new_stream_reusing_our_last_id_within_the_same_millisecond_is_read_from_its_start(
    client: redis.asyncio.Redis, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    reader = StreamReader(client, keys[0])
    await reader.start_live()
    for n in range(3):
        redis_client.xadd(keys[0], {"event": json.dumps(sollol_event(n=n))}, id=f"5000-{n}")
    assert numbers(await reader.read(block_ms=100)) == [0, 1, 2]
    redis_client.delete(keys[0])
    redis_client.xadd(keys[0], {"event": json.dumps(sollol_event(n=100))}, id="5000-0")
    items = await reader.read(block_ms=100)
    assert [gap.reset for gap in gaps(items)] == [True]
    assert numbers(items + await reader.read(block_ms=100)) == [100]
