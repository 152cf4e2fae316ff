"""`sollol-otel indexer`: the history indexer alone, for setups where no dashboard runs it."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TextIO

from sollol_otel.cli.exit_codes import EXIT_OK
from sollol_otel.history.indexer import Indexer, connect
from sollol_otel.redis.urls import redact_url
from sollol_otel.settings import Settings


async def _index(settings: Settings, err: TextIO) -> None:
    stopping = asyncio.Event()
    indexer: Indexer | None = None

    def stop() -> None:
        stopping.set()
        if indexer is not None:
            indexer.stop()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    said: list[str] = []

    def unreachable(detail: str) -> None:
        if not said:
            err.write(f"Redis at {redact_url(settings.redis_url)} does not answer ({detail}); retrying\n")
            err.flush()
        said.append(detail)

    client = await connect(settings.redis_url, settings.stream, stopping.is_set, unreachable)
    if client is None:
        return
    indexer = Indexer(client, settings.stream)
    err.write(
        f"indexing {settings.stream} from {redact_url(settings.redis_url)} into {indexer.store.folder} "
        "(one indexer per stream holds the lease; others stand by)\n"
    )
    err.flush()
    try:
        if not stopping.is_set():
            await indexer.run()
    finally:
        await client.aclose()


def run(settings: Settings, err: TextIO = sys.stderr) -> int:
    """Index until SIGINT or SIGTERM, then commit what is buffered and give the lease up."""
    asyncio.run(_index(settings, err))
    return EXIT_OK
