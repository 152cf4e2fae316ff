"""Events exactly as SOLLOL 0.9.66 writes them, for tests of everything that reads the stream."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

SOLLOL_EVENT: dict[str, Any] = {
    "timestamp": "2026-11-27T12:03:45.123456",
    "instance_id": "workstation_42_a1b2c3d4",
    "hostname": "workstation",
    "pid": 42,
    "event_type": "ROUTE_DECISION",
    "model": "llama3.2:3b",
    "backend": "ollama",
    "reason": "sufficient_resources (estimated 2.5GB)",
    "cached": False,
    "parameter_count": 3,
}


def sollol_event(**overrides: Any) -> dict[str, Any]:
    """A ROUTE_DECISION exactly as SOLLOL 0.9.66 writes it, with some keys changed."""
    return {**SOLLOL_EVENT, **overrides}


def write(client: redis.Redis, stream: str, *events: Mapping[str, Any]) -> list[str]:
    """XADD each event in SOLLOL's wire format (one field, `event`); the new ids."""
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream, {"event": json.dumps(event)})
    return [entry_id.decode() for entry_id in pipe.execute()]


def write_ahead(client: redis.Redis, stream: str, *events: Mapping[str, Any]) -> list[str]:
    """Like `write`, with ids an hour ahead of Redis's clock (a writer's clock ahead, a restored
    stream): a new stream written afterwards gets ids below these."""
    seconds, microseconds = client.time()
    ahead = seconds * 1000 + microseconds // 1000 + 3_600_000
    pipe = client.pipeline(transaction=False)
    for n, event in enumerate(events):
        pipe.xadd(stream, {"event": json.dumps(event)}, id=f"{ahead + n}-0")
    return [entry_id.decode() for entry_id in pipe.execute()]
