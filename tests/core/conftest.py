"""Fixtures for the recording pipeline: configure it against a real Redis, always shut it down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import sollol_otel
from sollol_otel.events import RoutingEvent
from sollol_otel.wire import Skipped, decode


@pytest.fixture
def recording(keys: tuple[str, str]) -> Iterator[Callable[..., sollol_otel.RoutingLogger]]:
    """`recording(**configure_kwargs)` → a configured logger writing to this test's keys."""
    yield sollol_otel.configure
    sollol_otel.shutdown(timeout=2.0)


def read_stream(client: redis.Redis, stream: str) -> list[RoutingEvent]:
    events = []
    for _, fields in client.xrange(stream):
        event = decode(fields)
        assert not isinstance(event, Skipped), event
        events.append(event)
    return events


def raw_stream(client: redis.Redis, stream: str) -> list[dict[str, Any]]:
    import json

    return [json.loads(fields[b"event"]) for _, fields in client.xrange(stream)]


def balanced(stats: sollol_otel.BridgeStats) -> bool:
    """The ledger's promise: every event recorded is delivered, dropped with a reason, or pending."""
    return stats.recorded == stats.exported + stats.dropped + stats.backlog and stats.dropped == sum(
        stats.dropped_by.values()
    )
