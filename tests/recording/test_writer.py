"""The Redis writer (the bridge's and the receiver's): one bad event never costs its batch."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from waiting import eventually

from sollol_otel.redis.writer import RedisWriter
from sollol_otel.settings import Settings

from .conftest import balanced, raw_stream


@pytest.fixture
def writer(keys: tuple[str, str], redis_url: str) -> Iterator[RedisWriter]:
    writer = RedisWriter(Settings(redis_url=redis_url, stream=keys[0], channel=keys[1]))
    yield writer
    writer.close(2.0)


def batch(size: int) -> list[dict[str, Any]]:
    return [{"event_type": "ROUTE_DECISION", "model": f"m-{i}"} for i in range(size)]


def test_an_event_with_lone_surrogates_is_repaired_and_its_batch_lands(
    writer: RedisWriter, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    events = batch(1_000)
    events[500]["model"] = "bad\ud800name"
    writer.submit(events)
    assert writer.flush(10.0)
    models = [event["model"] for event in raw_stream(redis_client, keys[0])]
    assert len(models) == 1_000 and models[500] == "bad\ufffdname"
    stats = writer.stats()
    assert (stats.exported, stats.repaired, stats.dropped) == (1_000, 1, 0) and balanced(stats)


def test_an_event_no_json_can_hold_is_dropped_alone_with_its_reason(
    writer: RedisWriter, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    events = batch(1_000)
    events[10]["extra"] = circular  # what a foreign sender's decoder could hand over
    writer.submit(events)
    assert writer.flush(10.0)
    models = [event["model"] for event in raw_stream(redis_client, keys[0])]
    assert models == [f"m-{i}" for i in range(1_000) if i != 10]
    stats = writer.stats()
    assert (stats.exported, stats.dropped, stats.dropped_by) == (999, 1, {"unencodable": 1})
    assert balanced(stats)


def test_events_without_an_id_get_one_and_ids_given_are_kept(
    writer: RedisWriter, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    writer.submit([{"event_type": "ROUTE_DECISION", "event_id": "from-the-sender"}, *batch(2)])
    assert writer.flush(10.0)
    ids = [event["event_id"] for event in raw_stream(redis_client, keys[0])]
    assert ids[0] == "from-the-sender" and len(set(ids)) == 3 and all(ids)


def test_events_submitted_after_close_are_counted_not_lost(writer: RedisWriter) -> None:
    writer.close(1.0)
    writer.submit(batch(3))
    stats = writer.stats()
    assert (stats.state, stats.dropped_by) == ("stopped", {"not delivered at shutdown": 3}) and balanced(
        stats
    )


@pytest.fixture
def not_redis() -> Iterator[str]:
    """A real HTTP server: something answers at the URL, in another protocol."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_server_that_is_not_redis_is_unreachable_with_the_cause_not_ok(
    keys: tuple[str, str], not_redis: str
) -> None:
    writer = RedisWriter(Settings(redis_url=not_redis, stream=keys[0], channel=keys[1]))
    writer.submit(batch(1))
    eventually(lambda: writer.stats().state == "unreachable")
    assert not writer.flush(0.5)
    stats = writer.stats()
    assert not stats.healthy and "Protocol error" in (stats.last_error or "") and stats.backlog == 1
    writer.close(0.5)
    assert writer.stats().dropped_by == {"not delivered at shutdown": 1}
