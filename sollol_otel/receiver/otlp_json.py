"""OTLP/JSON export requests → the routing records they carry.

OTLP/JSON is proto3's JSON mapping, except that trace and span ids are hex (not base64) and
64-bit integers may be strings. It is read directly: the generic protobuf JSON parser is ~20x
slower and converts every record, routing or not. Field names are lowerCamelCase; the proto
names are accepted too, as protobuf's own JSON parser does. Unknown fields are ignored, as OTLP
requires. A body whose containers are not what OTLP says is refused whole; a routing record
with a field of the wrong type is rejected alone (its unit: the log record, or the span).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import orjson

from sollol_otel.receiver.records import (
    EVENT_NAME_ATTRIBUTE,
    Candidate,
    Decoded,
    MalformedPayload,
    Signal,
    Unit,
    collect,
    in_our_namespace,
)
from sollol_otel.wire import MAX_STRING_CHARS, to_wire_value, truncate

_VALUE_KINDS = {
    name: kind
    for kind in ("string", "bool", "int", "double", "bytes", "array", "kvlist")
    for name in (f"{kind}Value", f"{kind}_value")
}
_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})
_INT64 = range(-(1 << 63), 1 << 63)


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{where} must be an object, not {type(value).__name__}")
    return value


def _list(obj: Mapping[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPayload(f"{where}.{camel} must be a list, not {type(value).__name__}")
    return value


def _integer(value: object, where: str) -> int:
    """An int64/uint64: a JSON number or a decimal string (its range is checked by the caller)."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise MalformedPayload(f"{where} must be an integer, not {str(value)[:40]!r}")


def _id(value: object, where: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise MalformedPayload(f"{where} is not hex: {str(value)[:40]!r}")


def _value(value: object, where: str) -> object:
    """An AnyValue object as plain Python; `{}` (no value set) is None."""
    if value is None:
        return None
    for key, raw in _object(value, where).items():
        kind = _VALUE_KINDS.get(key)
        if kind is not None:
            return _typed(kind, raw, where)
    return None


def _typed(kind: str, raw: object, where: str) -> object:
    if kind == "string" and isinstance(raw, str):
        return raw
    if kind == "bool" and isinstance(raw, bool):
        return raw
    if kind == "int":
        number = _integer(raw, where)
        if number not in _INT64:
            raise MalformedPayload(f"{where}: intValue {str(number)[:40]} is outside int64")
        return number
    if kind == "double" and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if kind == "double" and isinstance(raw, str) and raw in _NON_FINITE:
        return float(raw)
    if kind == "bytes" and isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True)
        except ValueError:
            pass
    if kind == "array":
        return [_value(item, where) for item in _list(_object(raw, where), "values", "values", where)]
    if kind == "kvlist":
        pairs = _list(_object(raw, where), "values", "values", where)
        return {key: _value(item, where) for key, item in _pairs(pairs, where)}
    raise MalformedPayload(f"{where}: {str(raw)[:40]!r} is not a valid {kind}Value")


def _pairs(pairs: list[Any], where: str) -> Iterator[tuple[str, Any]]:
    for pair in pairs:
        key = _object(pair, where).get("key")
        if not isinstance(key, str):
            raise MalformedPayload(f"{where}: attribute key {str(key)[:40]!r} is not a string")
        yield key, pair.get("value")


def _attributes(obj: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Attributes as wire values. A well-formed string attribute (nearly all of them) is taken
    directly: this loop is most of the JSON reader's time per event."""
    converted: dict[str, Any] = {}
    for pair in _list(obj, "attributes", "attributes", where):
        if (
            type(pair) is dict
            and type(key := pair.get("key")) is str
            and type(value := pair.get("value")) is dict
        ):
            text = value.get("stringValue")
            if type(text) is str and len(value) == 1:
                converted[key] = text if len(text) <= MAX_STRING_CHARS else truncate(text)
                continue
        for key, value in _pairs([pair], where):
            converted[key] = to_wire_value(_value(value, f"{where}.attributes"))
    return converted


def _log_event_name(record: Mapping[str, Any]) -> str:
    """The record's event name; records that have none are not inspected further (nor validated)."""
    name = _get(record, "eventName", "event_name")
    if isinstance(name, str) and name:
        return name
    attributes = record.get("attributes")
    for pair in attributes if isinstance(attributes, list) else ():
        if isinstance(pair, dict) and pair.get("key") == EVENT_NAME_ATTRIBUTE:
            value = pair.get("value")
            named = value.get("stringValue") if isinstance(value, dict) else None
            return named if isinstance(named, str) else ""
    return ""


_LOGS = (("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"), ("logRecords", "log_records"))
_SPANS = (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans", "spans"))


class _Item(NamedTuple):
    """A log record or span, its path for messages, and its resource entry (read on demand)."""

    obj: dict[str, Any]
    at: str
    entry: dict[str, Any]
    where: str


def _items(payload: object, path: tuple[tuple[str, str], ...]) -> Iterator[_Item]:
    """The records (or spans) of an OTLP/JSON request, every container on the way type-checked."""
    (outer, outer_snake), (middle, middle_snake), (inner, inner_snake) = path
    for i, raw_entry in enumerate(_list(_object(payload, "the body"), outer, outer_snake, "body")):
        where = f"{outer}[{i}]"
        entry = _object(raw_entry, where)
        for j, scope in enumerate(_list(entry, middle, middle_snake, where)):
            scope_where = f"{where}.{middle}[{j}]"
            items = _list(_object(scope, scope_where), inner, inner_snake, scope_where)
            for k, item in enumerate(items):
                at = f"{scope_where}.{inner}[{k}]"
                yield _Item(_object(item, at), at, entry, where)


class _Resources:
    """Resource attributes converted once per resource entry, and only if it has routing events."""

    def __init__(self) -> None:
        self._by_entry: dict[str, dict[str, Any]] = {}

    def of(self, item: _Item) -> dict[str, Any]:
        if item.where not in self._by_entry:
            resource = _get(item.entry, "resource", "resource")
            self._by_entry[item.where] = (
                {} if resource is None else _attributes(_object(resource, item.where), item.where)
            )
        return self._by_entry[item.where]


def _log_record(item: _Item, name: str, resources: _Resources, valid_utf8: bool) -> Candidate:
    record, at = item.obj, item.at
    timestamp = _integer(_get(record, "timeUnixNano", "time_unix_nano"), f"{at}.timeUnixNano")
    if not timestamp:
        observed = _get(record, "observedTimeUnixNano", "observed_time_unix_nano")
        timestamp = _integer(observed, f"{at}.observedTimeUnixNano")
    body = to_wire_value(_value(record.get("body"), f"{at}.body"))
    trace_id = _id(_get(record, "traceId", "trace_id"), f"{at}.traceId")
    span_id = _id(_get(record, "spanId", "span_id"), f"{at}.spanId")
    attributes = _attributes(record, at)
    return Candidate(
        name, timestamp, attributes, resources.of(item), body, trace_id, span_id, False, valid_utf8
    )


def _logs(payload: object, valid_utf8: bool) -> Iterator[Unit]:
    resources = _Resources()
    for item in _items(payload, _LOGS):
        name = _log_event_name(item.obj)
        if not in_our_namespace(name):
            continue
        try:
            yield [_log_record(item, name, resources, valid_utf8)]
        except (MalformedPayload, RecursionError) as exc:
            yield [_unreadable(exc)]


def _span(item: _Item, resources: _Resources, valid_utf8: bool) -> Unit:
    span, at = item.obj, item.at
    unit: Unit = []
    ids: tuple[bytes, bytes] | None = None
    for n, raw_event in enumerate(_list(span, "events", "events", at)):
        event_at = f"{at}.events[{n}]"
        event = _object(raw_event, event_at)
        name = event.get("name")
        if not isinstance(name, str) or not in_our_namespace(name):
            continue
        if ids is None:
            ids = (
                _id(_get(span, "traceId", "trace_id"), f"{at}.traceId"),
                _id(_get(span, "spanId", "span_id"), f"{at}.spanId"),
            )
        timestamp = _integer(_get(event, "timeUnixNano", "time_unix_nano"), f"{event_at}.timeUnixNano")
        attributes = _attributes(event, event_at)
        unit.append(Candidate(name, timestamp, attributes, resources.of(item), None, *ids, True, valid_utf8))
    return unit


def _spans(payload: object, valid_utf8: bool) -> Iterator[Unit]:
    resources = _Resources()
    for item in _items(payload, _SPANS):
        try:
            unit = _span(item, resources, valid_utf8)
        except (MalformedPayload, RecursionError) as exc:
            unit = [_unreadable(exc)]
        if unit:
            yield unit


def _unreadable(exc: Exception) -> str:
    return "values are nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:1000]


def _parse(data: bytes) -> tuple[object, bool]:
    """The body as Python objects, and whether all its text is valid UTF-8.

    orjson reads it in a third of json's time and refuses what UTF-8 cannot carry; json then
    reads what orjson refuses but OTLP/JSON senders write: lone surrogates (`"\\ud800"`, each
    repaired or rejected later with its record alone), integers beyond 64 bits, NaN.
    """
    try:
        return orjson.loads(data), True
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data), False
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"not JSON: {exc}") from None


def read(signal: Signal, data: bytes) -> Decoded:
    """The routing events of an OTLP/JSON export request; a body that is not JSON, or whose
    containers are not OTLP's, raises MalformedPayload and yields nothing."""
    payload, valid_utf8 = _parse(data)
    return collect(_logs(payload, valid_utf8) if signal is Signal.LOGS else _spans(payload, valid_utf8))
