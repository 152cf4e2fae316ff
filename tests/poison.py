"""Stream entries a hostile or careless writer can put in the stream: every reader must survive them.

Each is the raw `event` field (bytes), or a whole entry's fields, with a name for the test ids.
SOLLOL's own writers `json.dumps` arbitrary metadata, so several need no malice at all.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from sollol_events import sollol_event


def _event(**fields: Any) -> bytes:
    return json.dumps(sollol_event(**fields)).encode()


def _raw_event(tail: str) -> bytes:
    """A SOLLOL event with raw JSON text (what json.dumps cannot write) as the value of `meta`."""
    return _event(reason="poison")[:-1] + b', "meta": ' + tail.encode() + b"}"


#: name → the entry's fields.
POISON: dict[str, dict[str, bytes]] = {
    "deep_nesting": {"event": _raw_event("[" * 1000 + "]" * 1000)},
    "deep_within_parser_limits": {"event": _raw_event('{"a":' * 200 + "1" + "}" * 200)},
    "infinite_number": {"event": _raw_event("1e99999")},
    "nan_and_infinity": {"event": _raw_event("[NaN, Infinity, -Infinity]")},
    "huge_integer": {"event": _raw_event("1" + "0" * 40)},
    "huge_field": {"event": _event(reason="x" * 900_000)},
    "over_the_entry_limit": {"event": _event(reason="x" * 2_000_000)},
    "control_characters": {
        "event": _event(model="\x1b]0;pwned\x07\x1b[2J\x00\u202eevil", reason="\x1b[31mred")
    },
    "foreign_field_types": {
        "event": json.dumps(
            {
                "event_type": 42,
                "model": ["a", "b"],
                "backend": {"x": 1},
                "timestamp": {"y": 2},
                "__proto__": {},
            }
        ).encode()
    },
    "event_type_object": {"event": json.dumps({"event_type": {"nested": True}}).encode()},
    "not_utf8": {"event": b"\xff\xfe\x00 not text"},
    "not_json": {"event": b"{'python': 'repr'}"},
    "no_event_field": {"other": b"field"},
}


def write_poison(client: redis.Redis, stream: str) -> list[str]:
    """Every poison entry, in order; their ids."""
    return [client.xadd(stream, fields).decode() for fields in POISON.values()]  # type: ignore[arg-type]


def strict_json(text: str | bytes) -> Any:
    """Parse as a browser would: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)
