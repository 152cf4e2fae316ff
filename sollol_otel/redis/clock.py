"""Redis's clock, the one clock every writer and reader shares.

Stream ids begin with the milliseconds of the Redis server that assigned them; a router's or a
reader's own clock may be off by hours. So "now" for ranges, rates and trimming is Redis's
TIME, and an entry's time is its id's milliseconds (`id_ms`).
"""

from __future__ import annotations

import redis.asyncio


async def redis_now_ms(client: redis.asyncio.Redis) -> int:
    """Redis's TIME in epoch milliseconds (in a Cluster, the clock of the node the client reaches)."""
    seconds, microseconds = await client.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


def id_ms(stream_id: str | bytes) -> int:
    """The milliseconds part of a stream id (`1700000000000-5` -> 1700000000000)."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return int(text.partition("-")[0])
