"""`tail --history N` reads in pages: what it holds does not grow with N, and order and count hold
across pages, whether it prints from memory or reads the range again forwards."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest
import redis
from sollol_events import sollol_event, write

from sollol_otel.cli import tail
from sollol_otel.cli.output import OutputFormat
from sollol_otel.display import ColorMode
from sollol_otel.filters import EventFilter
from sollol_otel.redis.stream import StreamReader, reader_client


class CountingSink(io.StringIO):
    """Keeps only the events' `n` in order, so the output costs no memory of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def write(self, text: str) -> int:
        self.seen.extend(json.loads(line)["n"] for line in text.splitlines() if line.startswith("{"))
        return len(text)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 100 and an in-memory limit of about 100 of these events (each a 2 kB reason), so a
    few thousand entries cross both."""
    monkeypatch.setattr(tail, "PAGE", 100)
    monkeypatch.setattr(tail, "MAX_HELD_BYTES", 250_000)


async def history(
    url: str, stream: str, n: int, event_filter: EventFilter | None = None
) -> tuple[list[int], int]:
    """The `n` values `--history n -o json` prints, and the peak memory the reading took."""
    options = tail.TailOptions(
        redis_url=url, stream=stream, history=n, event_filter=event_filter or EventFilter(),
        output=OutputFormat.json, color=ColorMode.never,
    )  # fmt: skip
    sink = CountingSink()
    output = tail.Output(options, sink, io.StringIO())
    client = await reader_client(url, stream)
    tracemalloc.start()
    try:
        await tail._history(client, StreamReader(client, stream), options, output, None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await client.aclose()
    return sink.seen, peak


@pytest.mark.usefixtures("small_pages")
async def test_memory_does_not_grow_with_n(
    keys: tuple[str, str], redis_client: redis.Redis, redis_url: str
) -> None:
    write(redis_client, keys[0], *(sollol_event(n=n, reason="r" * 2000) for n in range(3000)))
    shown_few, peak_few = await history(redis_url, keys[0], 500)
    shown_all, peak_all = await history(redis_url, keys[0], 3000)
    assert shown_few == list(range(2500, 3000)) and shown_all == list(range(3000))
    assert peak_all < 2 * peak_few  # six times the events, not six times the memory


@pytest.mark.usefixtures("small_pages")
async def test_a_filter_across_many_pages_shows_the_last_n_matches_in_order(
    keys: tuple[str, str], redis_client: redis.Redis, redis_url: str
) -> None:
    write(
        redis_client, keys[0], *(sollol_event(n=n, model="m" if n % 7 == 0 else "other") for n in range(2000))
    )
    shown, _ = await history(redis_url, keys[0], 40, EventFilter(model="m"))
    assert shown == [n for n in range(2000) if n % 7 == 0][-40:]
