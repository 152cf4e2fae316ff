"""`sollol-otel indexer`: the history indexer alone, for setups where no dashboard runs it."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TextIO

from sollol_otel.cli.exit_codes import EXIT_OK
from sollol_otel.history.indexer import Indexer
from sollol_otel.redis.client import async_client
from sollol_otel.redis.urls import redact_url
from sollol_otel.settings import Settings


async def _index(settings: Settings, err: TextIO) -> None:
    client = await async_client(settings.redis_url, key=settings.stream)
    indexer = Indexer(client, settings.stream)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, indexer.stop)
    err.write(
        f"indexing {settings.stream} from {redact_url(settings.redis_url)} into {indexer.store.folder} "
        "(one indexer per stream holds the lease; others stand by)\n"
    )
    err.flush()
    try:
        await indexer.run()
    finally:
        await client.aclose()


def run(settings: Settings, err: TextIO = sys.stderr) -> int:
    """Index until SIGINT or SIGTERM, then commit what is buffered and give the lease up."""
    asyncio.run(_index(settings, err))
    return EXIT_OK
