"""How a routing event maps onto OpenTelemetry attributes, and back onto the wire.

| wire key | OTel |
|---|---|
| event_type | event name `sollol.routing.<type in lower case>` |
| model | `gen_ai.request.model` |
| node_url (OLLAMA_NODE_SELECTED) | `sollol.node_url`, plus `server.address`/`server.port` parsed from it |
| backend_host, backend_port (RPC_BACKEND_SELECTED) | `server.address`, `server.port` |
| reason (FALLBACK_TRIGGERED) | `sollol.reason`, plus `error.type`: the reason's class (`ollama_error`) |
| any other key k | `sollol.k` |
| instance_id, hostname, pid | resource `service.instance.id`, `host.name`, `process.pid` |
| message | the log record's body |
| trace_id, span_id | the record's trace context (hex) |
| service | resource `service.name` |
| keys whose value is null | named in `sollol.null_keys` (OTel attributes cannot be null) |
| cached (ROUTE_DECISION, CACHE_HIT) | implied by the event type, as SOLLOL sets it, unless contradicting |

The span event of a decision carries only SPAN_EVENT_KEYS; the log event carries all of the above.

Attributes are flat and few on purpose: attribute validation is half the cost of an emit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

from sollol_otel.events import SCHEMA_VERSION, EventType, one_line_message
from sollol_otel.wire import MAX_STRING_CHARS, iso_timestamp, to_wire_value

NAMESPACE = "sollol."
MODEL = "gen_ai.request.model"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
NULL_KEYS = NAMESPACE + "null_keys"
BACKEND = NAMESPACE + "backend"
REASON = NAMESPACE + "reason"
#: What a span event keeps: enough to read the decision in Jaeger's timeline. The log event,
#: correlated by trace id, has everything; each attribute left out saves ~2 µs of validation.
SPAN_EVENT_KEYS = frozenset({MODEL, BACKEND, REASON, SERVER_ADDRESS, SERVER_PORT, ERROR_TYPE})

RESOURCE_INSTANCE_ID = "service.instance.id"
RESOURCE_HOSTNAME = "host.name"
RESOURCE_PID = "process.pid"
RESOURCE_SERVICE = "service.name"

#: Keys every wire event starts with (SOLLOL's order), and the ones we append.
HEADER_KEYS = ("timestamp", "instance_id", "hostname", "pid", "event_type", "model", "backend")
TRAILER_KEYS = ("message", "trace_id", "span_id", "service", "schema_version")
_RESERVED = frozenset(HEADER_KEYS + TRAILER_KEYS) - {"model", "backend"}

_PRIMITIVES = (str, bool, int, float)
_CACHEABLE = frozenset({EventType.ROUTE_DECISION, EventType.CACHE_HIT})


def to_attribute_value(value: object) -> AttributeValue | None:
    """A metadata value as a valid OTel attribute value; None means "leave it out"."""
    kind = type(value)
    if kind is bool or kind is int or (kind is str and len(value) <= MAX_STRING_CHARS):  # type: ignore[arg-type]
        return value  # type: ignore[return-value]  # the common case, on the caller's hot path
    wire = to_wire_value(value)
    if isinstance(wire, list):
        kinds = {type(item) for item in wire}
        if len(kinds) == 1 and kinds <= set(_PRIMITIVES):
            return tuple(wire)
        return json.dumps(wire, ensure_ascii=False)
    return wire


def _host_port(address: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(address if "//" in address else f"//{address}")
        return parts.hostname, parts.port
    except ValueError:
        return None, None


def _error_type(reason: object) -> str:
    text = str(reason)
    head, sep, _ = text.partition(":")
    if sep and head and " " not in head.strip():
        return head.strip()
    return text if len(text) <= 64 and " " not in text else "_OTHER"


def event_attributes(
    event_type: EventType, model: object, backend: object, fields: Mapping[str, object]
) -> dict[str, AttributeValue]:
    """The attributes of one decision's log event and span event."""
    attributes: dict[str, AttributeValue] = {}
    if model is not None:
        attributes[MODEL] = str(to_attribute_value(model))
    if backend is not None:
        attributes[BACKEND] = str(to_attribute_value(backend))
    nulls: list[str] = []
    for key, value in fields.items():
        if key == "cached" and value is (event_type is EventType.CACHE_HIT) and event_type in _CACHEABLE:
            continue  # implied by the event type (SOLLOL's rule); to_wire_fields puts it back
        converted = to_attribute_value(value)
        if converted is None:
            nulls.append(key)
            continue
        if event_type is EventType.RPC_BACKEND_SELECTED and key in ("backend_host", "backend_port"):
            attributes[SERVER_ADDRESS if key == "backend_host" else SERVER_PORT] = converted
            continue
        attributes[NAMESPACE + key] = converted
    if event_type is EventType.OLLAMA_NODE_SELECTED and isinstance(fields.get("node_url"), str):
        host, port = _host_port(str(fields["node_url"]))
        if host:
            attributes[SERVER_ADDRESS] = host
        if port:
            attributes[SERVER_PORT] = port
    if event_type is EventType.FALLBACK_TRIGGERED and fields.get("reason") is not None:
        attributes[ERROR_TYPE] = _error_type(fields["reason"])
    if nulls:
        attributes[NULL_KEYS] = tuple(nulls)
    return attributes


def span_event_attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
    return {key: value for key, value in attributes.items() if key in SPAN_EVENT_KEYS}


def _wire_key(event_type: str, key: str) -> str | None:
    """The wire key for an attribute, or None for attributes derived from other keys."""
    if key in (SERVER_ADDRESS, SERVER_PORT):
        if event_type == EventType.RPC_BACKEND_SELECTED:
            return "backend_host" if key == SERVER_ADDRESS else "backend_port"
        return None
    if key == ERROR_TYPE:
        return None
    name = key[len(NAMESPACE) :] if key.startswith(NAMESPACE) else key
    return f"{name}_metadata" if name in _RESERVED else name


def to_wire_fields(
    event_type: str,
    *,
    timestamp_ns: int | None,
    attributes: Mapping[str, Any],
    resource: Mapping[str, Any],
    body: object,
    trace_id: int,
    span_id: int,
) -> dict[str, Any]:
    """A routing log record (from our SDK or any OTLP sender) as a SOLLOL-compatible wire event."""
    fields: dict[str, Any] = {
        "timestamp": iso_timestamp(timestamp_ns) if timestamp_ns else None,
        "instance_id": resource.get(RESOURCE_INSTANCE_ID),
        "hostname": resource.get(RESOURCE_HOSTNAME),
        "pid": resource.get(RESOURCE_PID),
        "event_type": event_type,
        "model": attributes.get(MODEL),
        "backend": attributes.get(BACKEND),
    }
    for key, value in attributes.items():
        if key in (MODEL, BACKEND):
            continue
        if key == NULL_KEYS:
            fields.update(dict.fromkeys(value if isinstance(value, (list, tuple)) else (), None))
            continue
        wire_key = _wire_key(event_type, key)
        if wire_key is not None:
            fields[wire_key] = list(value) if isinstance(value, tuple) else value
    if event_type in _CACHEABLE:
        fields.setdefault("cached", event_type == EventType.CACHE_HIT)
    fields["message"] = body if isinstance(body, str) and body else one_line_message(event_type, fields)
    if trace_id:
        fields["trace_id"] = f"{trace_id:032x}"
        fields["span_id"] = f"{span_id:016x}"
    fields["service"] = resource.get(RESOURCE_SERVICE)
    fields["schema_version"] = SCHEMA_VERSION
    return fields
