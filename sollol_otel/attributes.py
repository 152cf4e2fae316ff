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
| event_id | `sollol.event_id`: unique per decision, on the log event |
| cached (ROUTE_DECISION, CACHE_HIT) | implied by the event type, as SOLLOL sets it, unless contradicting |

The span event of a decision carries only SPAN_EVENT_KEYS; the log event carries all of the above.

Metadata (a caller's extra keywords, beside a method's own fields such as reason or task_id) is
bounded before any per-item work: at most MAX_METADATA_KEYS keys (the first ones),
MAX_METADATA_CHARS characters of text in all, and each value within `wire.to_wire_value`'s
limits. Metadata named like one of our keys (`timestamp`, `event_id`, `null_keys`, ...) is kept
as `<key>_metadata`; `model` or `backend` as metadata fill the event's own when the method has
none (as SOLLOL does), else they too become `<key>_metadata`.

Attributes are flat and few on purpose: attribute validation is half the cost of an emit.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

from sollol_otel.events import SCHEMA_VERSION, EventType, one_line_message
from sollol_otel.wire import MAX_STRING_CHARS, Reject, clean_text, iso_timestamp, to_wire_value

NAMESPACE = "sollol."
_NAMESPACE_LENGTH = len(NAMESPACE)
MODEL = "gen_ai.request.model"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
NULL_KEYS = NAMESPACE + "null_keys"
BACKEND = NAMESPACE + "backend"
REASON = NAMESPACE + "reason"
_NODE_URL = NAMESPACE + "node_url"
#: One id per decision, on its log event: the writer's exactly-once check and receivers' dedupe.
#: Given on the emitter thread; the span event goes without (each attribute costs the caller ~1 µs).
EVENT_ID = NAMESPACE + "event_id"
#: What a span event keeps: enough to read the decision in Jaeger's timeline. The log event,
#: correlated by trace id, has everything; each attribute left out saves ~1-2 µs of validation.
SPAN_EVENT_KEYS = frozenset({MODEL, BACKEND, REASON, SERVER_ADDRESS, SERVER_PORT, ERROR_TYPE})

#: Most metadata keys kept per event (the first ones; a logging method's own fields are not
#: metadata). With our own attributes this stays under the OTel SDK's default limit of 128 per
#: log record, past which it would evict the oldest attributes (reason, model...) with a warning each.
MAX_METADATA_KEYS = 64
#: Most characters of metadata text per event, all values together; past it values become OVER_LIMIT_MARK.
MAX_METADATA_CHARS = 32_768
OVER_LIMIT_MARK = "…[over the metadata size limit]"

RESOURCE_INSTANCE_ID = "service.instance.id"
RESOURCE_HOSTNAME = "host.name"
RESOURCE_PID = "process.pid"
RESOURCE_SERVICE = "service.name"

#: Keys every wire event starts with (SOLLOL's order), and the ones we append.
HEADER_KEYS = ("timestamp", "instance_id", "hostname", "pid", "event_type", "model", "backend")
TRAILER_KEYS = ("message", "trace_id", "span_id", "service", "schema_version", "event_id")
#: Attributes a foreign sender named like our keys: kept on the wire as `<key>_metadata`.
_RESERVED = frozenset(HEADER_KEYS + TRAILER_KEYS) - {"model", "backend", "event_id"}
#: Metadata keys the logger renames `<key>_metadata` before they can overwrite ours.
_PROTECTED = frozenset(HEADER_KEYS + TRAILER_KEYS + ("null_keys",))

_PRIMITIVES = (str, bool, int, float)
#: The integers an OTel attribute carries (OTLP's int64); others become their text, on every path.
_MIN_INT, _MAX_INT = -(2**63), 2**63 - 1
_PAST_64_BITS = "integer past 64 bits"
_T = TypeVar("_T")
_CACHEABLE = frozenset({EventType.ROUTE_DECISION, EventType.CACHE_HIT})
_DERIVING = frozenset({EventType.OLLAMA_NODE_SELECTED, EventType.FALLBACK_TRIGGERED})


def _ignore(_: str) -> None:
    pass


def to_attribute_value(value: object, reject: Reject = _ignore) -> AttributeValue | None:
    """A metadata value as a valid OTel attribute value; None means "leave it out"."""
    kind = type(value)
    if kind is str:
        text: str = value  # type: ignore[assignment]  # exactly str: checked by identity, the fastest test
        return text if len(text) <= MAX_STRING_CHARS and text.isascii() else clean_text(text, reject)
    if kind is bool:
        return value  # type: ignore[return-value]  # the common cases, on the caller's hot path
    wire = _int64(to_wire_value(value, reject), reject)  # to_wire_value keeps unsigned 64-bit integers
    if isinstance(wire, list):
        wire = [_int64(item, reject) for item in wire]
        kinds = {type(item) for item in wire}
        if len(kinds) == 1 and kinds <= set(_PRIMITIVES):
            return tuple(wire)
        return json.dumps(wire, ensure_ascii=False)
    return wire


def _int64(item: _T, reject: Reject) -> _T | str:
    """An integer OTLP's int64 cannot carry as its text (an int subclass too: IntEnum, IntFlag)."""
    if isinstance(item, int) and not isinstance(item, bool) and not _MIN_INT <= item <= _MAX_INT:
        reject(_PAST_64_BITS)
        return str(item)
    return item


def _chars(value: AttributeValue) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, tuple):
        return sum(len(item) if isinstance(item, str) else 8 for item in value)
    return 8


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
    event_type: EventType,
    model: object,
    backend: object,
    fields: Mapping[str, object],
    metadata: Mapping[str, object],
    *,
    max_keys: int = MAX_METADATA_KEYS,
    reject: Reject = _ignore,
) -> dict[str, AttributeValue]:
    """The attributes of one decision's log event and span event, within the metadata limits.

    `fields` are the logging method's own (reason, task_id...), `metadata` the caller's extras;
    only the metadata is capped at `max_keys`. Never raises for any value; each cut, replacement
    or renamed key is told to `reject`.
    """
    extras: Iterable[tuple[str, object]] = metadata.items()
    if len(metadata) > max_keys:  # checked before any per-key work: a caller may pass 10,000 keys
        reject("metadata keys over the limit")
        extras = itertools.islice(extras, max_keys)
    attributes: dict[str, AttributeValue] = {}
    nulls: list[str] = []
    chars = 0
    for given, value in itertools.chain(fields.items(), extras):
        key = given
        if given in _PROTECTED:
            if given in ("model", "backend") and (model if given == "model" else backend) is None:
                model, backend = (value, backend) if given == "model" else (model, value)  # SOLLOL's rule
                continue
            reject("reserved key renamed")
            key = f"{given}_metadata"
        elif key == "cached" and value is (event_type is EventType.CACHE_HIT) and event_type in _CACHEABLE:
            continue  # implied by the event type (SOLLOL's rule); to_wire_fields puts it back
        kind = type(value)
        if kind is str and len(value) <= MAX_STRING_CHARS and value.isascii():  # type: ignore[arg-type,attr-defined]
            converted: AttributeValue | None = value  # type: ignore[assignment]  # the common case, inline
            chars += len(value)  # type: ignore[arg-type]
        elif kind is bool or (kind is int and _MIN_INT <= value <= _MAX_INT):  # type: ignore[operator]
            converted = value  # type: ignore[assignment]
        else:
            converted = to_attribute_value(value, reject)
            if converted is None:
                nulls.append(key)
                continue
            chars += _chars(converted)
        if chars > MAX_METADATA_CHARS:
            reject("metadata over the size limit")
            converted = OVER_LIMIT_MARK
        if event_type is EventType.RPC_BACKEND_SELECTED and key in ("backend_host", "backend_port"):
            attributes[SERVER_ADDRESS if key == "backend_host" else SERVER_PORT] = converted
            continue
        attributes[NAMESPACE + key] = converted
    if model is not None:
        attributes[MODEL] = str(to_attribute_value(model, reject))
    if backend is not None:
        attributes[BACKEND] = str(to_attribute_value(backend, reject))
    if nulls or event_type in _DERIVING:
        _add_derived(attributes, event_type, nulls)
    return attributes


def _add_derived(attributes: dict[str, AttributeValue], event_type: EventType, nulls: list[str]) -> None:
    """Attributes other tools read, derived from the decision's own: node address, error class, nulls."""
    node_url = attributes.get(_NODE_URL) if event_type is EventType.OLLAMA_NODE_SELECTED else None
    if isinstance(node_url, str):
        host, port = _host_port(node_url)
        if host:
            attributes[SERVER_ADDRESS] = host
        if port:
            attributes[SERVER_PORT] = port
    if event_type is EventType.FALLBACK_TRIGGERED and REASON in attributes:
        attributes[ERROR_TYPE] = _error_type(attributes[REASON])
    if nulls:
        attributes[NULL_KEYS] = tuple(nulls)


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
        if key in (MODEL, BACKEND, EVENT_ID):
            continue
        if key == NULL_KEYS:
            for name in value if isinstance(value, (list, tuple)) else ():
                null_key = _wire_key(event_type, NAMESPACE + str(name))
                if null_key is not None:
                    fields.setdefault(null_key, None)  # never a key given a value: nulls cannot erase
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
    event_id = attributes.get(EVENT_ID)
    if isinstance(event_id, str) and event_id:
        fields["event_id"] = event_id
    return fields


def message_of(event_type: EventType, attributes: Mapping[str, AttributeValue]) -> str:
    """The one-line message of a decision, from its attributes (bounded, never the caller's objects)."""
    fields: dict[str, Any] = {
        key[_NAMESPACE_LENGTH:]: value for key, value in attributes.items() if key[:7] == NAMESPACE
    }
    fields["model"] = attributes.get(MODEL)
    if event_type is EventType.RPC_BACKEND_SELECTED:
        fields["backend_host"], fields["backend_port"] = (
            attributes.get(SERVER_ADDRESS),
            attributes.get(SERVER_PORT),
        )
    return one_line_message(event_type, fields)
