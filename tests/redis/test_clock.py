"""Redis's clock: "now" for readers is Redis's TIME, the same clock that stamps stream ids."""

from __future__ import annotations

import redis
import redis.asyncio

from sollol_otel.redis.clock import id_ms, redis_now_ms


async def test_redis_now_ms_lies_between_the_ids_redis_assigns_before_and_after(
    redis_client: redis.Redis, redis_url: str, keys: tuple[str, str]
) -> None:
    stream, _ = keys
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        before = id_ms(redis_client.xadd(stream, {"x": "1"}))
        now = await redis_now_ms(client)
        after = id_ms(redis_client.xadd(stream, {"x": "2"}))
    finally:
        await client.aclose()
    assert before <= now <= after


def test_id_ms_reads_the_milliseconds_of_text_and_bytes_ids() -> None:
    assert id_ms("1700000000000-5") == 1700000000000
    assert id_ms(b"1700000000001-0") == 1700000000001
    assert id_ms("1700000000002") == 1700000000002
