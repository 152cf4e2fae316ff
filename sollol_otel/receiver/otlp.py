"""OTLP export requests (protobuf or OTLP/JSON) → the routing events they carry.

Any OTel SDK or Collector may send us everything it has; we keep log records and span events
whose name is `sollol.routing.<type>` and ignore the rest. A payload that does not parse is
malformed as a whole (nothing from it is used); a routing record that cannot be used (bad
event name, ids of the wrong length) is rejected on its own and counted, as OTLP's
partial_success asks.
"""

from __future__ import annotations

import base64
import enum
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from sollol_otel.events import EVENT_NAME_PREFIX, EventType
from sollol_otel.wire import MAX_STRING_CHARS, to_wire_value, truncate

#: Where SDKs older than the LogRecord.event_name field (and some Collectors) put the event name.
EVENT_NAME_ATTRIBUTE = "event.name"
#: Event types we do not know yet (a newer producer) are kept if they look like one of ours.
_EVENT_TYPE_SUFFIX = re.compile(r"[a-z][a-z0-9_]{0,63}")
_KNOWN_TYPES = {event_type.event_name: event_type.value for event_type in EventType}
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
#: How many rejection reasons are quoted in the response's error_message.
_QUOTED_ERRORS = 3


class Signal(str, enum.Enum):
    """The OTLP signal of a request; its value is the path segment (`/v1/<value>`)."""

    LOGS = "logs"
    TRACES = "traces"


class MalformedPayload(ValueError):
    """The body is not an OTLP export request of the signal it was sent for."""


class OtlpEvent(NamedTuple):
    """One routing event as OTLP carried it, ready for `attributes.to_wire_fields`.

    A named tuple: it is built once per event on the receiver's hot path.
    """

    event_type: str
    timestamp_ns: int | None
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any]
    body: object
    trace_id: int
    span_id: int


@dataclass
class Decoded:
    """What one request held: its routing events and the routing records we could not use.

    `rejected` counts log records (logs) or spans (traces), the unit OTLP's partial_success uses.
    """

    events: list[OtlpEvent] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < _QUOTED_ERRORS:
            self.errors.append(reason)

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.errors)
        return "; ".join(self.errors) + (f" (and {more} more)" if more > 0 else "")


def _value(value: AnyValue) -> object:
    """An AnyValue as plain Python (lists, dicts, bytes), before the wire's size limits."""
    kind = value.WhichOneof("value")
    if kind is None or kind == "string_value_strindex":  # strindex only has meaning in profiles
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _value(pair.value) for pair in value.kvlist_value.values}
    return getattr(value, kind)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    """Attributes as wire values: long strings cut, long lists shortened, maps as JSON text.

    Strings, integers and booleans (nearly every attribute) skip the general conversion: this
    loop is most of the receiver's CPU time per event.
    """
    converted: dict[str, Any] = {}
    for pair in pairs:
        value = pair.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            text = value.string_value
            converted[pair.key] = text if len(text) <= MAX_STRING_CHARS else truncate(text)
        elif kind in ("int_value", "bool_value"):
            converted[pair.key] = getattr(value, kind)
        else:
            converted[pair.key] = to_wire_value(_value(value))
    return converted


def event_type_of(name: str) -> str | None:
    """`sollol.routing.route_decision` → `ROUTE_DECISION`; None for names that are not ours."""
    known = _KNOWN_TYPES.get(name)
    if known is not None:
        return known
    suffix = name[len(EVENT_NAME_PREFIX) :]
    return suffix.upper() if _EVENT_TYPE_SUFFIX.fullmatch(suffix) else None


def _ids(trace_id: bytes, span_id: bytes) -> tuple[int, int] | str:
    """The ids as integers (0 when absent), or why they are unusable."""
    if len(trace_id) not in (0, _TRACE_ID_BYTES):
        return f"trace id of {len(trace_id)} bytes (OTLP requires {_TRACE_ID_BYTES})"
    if len(span_id) not in (0, _SPAN_ID_BYTES):
        return f"span id of {len(span_id)} bytes (OTLP requires {_SPAN_ID_BYTES})"
    return int.from_bytes(trace_id, "big"), int.from_bytes(span_id, "big")


class _Candidate(NamedTuple):
    """A record or span event named `sollol.routing.*`, before its name and ids are checked."""

    name: str
    timestamp_ns: int
    attributes: dict[str, Any]
    resource: Mapping[str, Any]
    body: object
    trace_id: bytes
    span_id: bytes


def _routing_event(candidate: _Candidate) -> OtlpEvent | str:
    """The event, or why it cannot be used."""
    event_type = event_type_of(candidate.name)
    if event_type is None:
        return f"{candidate.name[:100]!r} is not a routing event name"
    ids = _ids(candidate.trace_id, candidate.span_id)
    if isinstance(ids, str):
        return f"{candidate.name}: {ids}"
    candidate.attributes.pop(EVENT_NAME_ATTRIBUTE, None)
    return OtlpEvent(
        event_type=event_type,
        timestamp_ns=candidate.timestamp_ns or None,
        attributes=candidate.attributes,
        resource=candidate.resource,
        body=candidate.body,
        trace_id=ids[0],
        span_id=ids[1],
    )


def _collect(units: Iterable[list[_Candidate]]) -> Decoded:
    """Events from units (a log record, or a span with its events); a unit with an unusable one is rejected.

    OTLP's partial_success counts rejected log records and spans, not span events.
    """
    decoded = Decoded()
    for unit in units:
        problem: str | None = None
        for candidate in unit:
            event = _routing_event(candidate)
            if isinstance(event, str):
                problem = problem or event
            else:
                decoded.events.append(event)
        if problem is not None:
            decoded.reject(problem)
    return decoded


# Protobuf: the generated classes parse; we read only records named as routing events.


def _log_event_name(record: LogRecord) -> str:
    if record.event_name:
        return str(record.event_name)
    for pair in record.attributes:
        if pair.key == EVENT_NAME_ATTRIBUTE:
            return str(pair.value.string_value)
    return ""


def _protobuf_logs(request: ExportLogsServiceRequest) -> Iterator[list[_Candidate]]:
    for resource_logs in request.resource_logs:
        resource: dict[str, Any] | None = None
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                name = _log_event_name(record)
                if not name.startswith(EVENT_NAME_PREFIX):
                    continue
                if resource is None:
                    resource = _attributes(resource_logs.resource.attributes)
                body = to_wire_value(_value(record.body)) if record.HasField("body") else None
                timestamp = record.time_unix_nano or record.observed_time_unix_nano
                attributes = _attributes(record.attributes)
                yield [
                    _Candidate(name, timestamp, attributes, resource, body, record.trace_id, record.span_id)
                ]


def _protobuf_spans(request: ExportTraceServiceRequest) -> Iterator[list[_Candidate]]:
    for resource_spans in request.resource_spans:
        resource: dict[str, Any] | None = None
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                unit = []
                for event in span.events:
                    if not event.name.startswith(EVENT_NAME_PREFIX):
                        continue
                    if resource is None:
                        resource = _attributes(resource_spans.resource.attributes)
                    attributes = _attributes(event.attributes)
                    unit.append(
                        _Candidate(
                            event.name,
                            event.time_unix_nano,
                            attributes,
                            resource,
                            None,
                            span.trace_id,
                            span.span_id,
                        )
                    )
                if unit:
                    yield unit


def _parse_protobuf(request: Request, signal: Signal, data: bytes) -> Request:
    try:
        request.ParseFromString(data)
    except (DecodeError, RecursionError) as exc:
        raise MalformedPayload(f"not a protobuf OTLP {signal.value} export request: {exc}") from None
    return request


Request = TypeVar("Request", ExportLogsServiceRequest, ExportTraceServiceRequest)


# OTLP/JSON: proto3's JSON mapping, except that trace and span ids are hex (not base64) and
# 64-bit integers may be strings. Read directly: the generic protobuf JSON parser is ~20x slower
# and converts every record, routing or not. Containers and the fields we use are type-checked;
# unknown fields are ignored, as OTLP requires. Field names are lowerCamelCase; the proto names
# are accepted too, as protobuf's own JSON parser does.

_JSON_VALUE_KINDS = {
    name: kind
    for kind in ("string", "bool", "int", "double", "bytes", "array", "kvlist")
    for name in (f"{kind}Value", f"{kind}_value")
}
_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{where} must be an object, not {type(value).__name__}")
    return value


def _json_list(obj: Mapping[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPayload(f"{where}.{camel} must be a list, not {type(value).__name__}")
    return value


def _json_int(value: object, where: str) -> int:
    """An int64/uint64: a JSON number or a decimal string."""
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


def _json_id(value: object, where: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise MalformedPayload(f"{where} is not hex: {str(value)[:40]!r}")


def _json_value(value: object, where: str) -> object:
    """An AnyValue object as plain Python; `{}` (no value set) is None."""
    if value is None:
        return None
    for key, raw in _json_object(value, where).items():
        kind = _JSON_VALUE_KINDS.get(key)
        if kind is not None:
            return _json_typed(kind, raw, where)
    return None


def _json_typed(kind: str, raw: object, where: str) -> object:
    if kind == "string" and isinstance(raw, str):
        return raw
    if kind == "bool" and isinstance(raw, bool):
        return raw
    if kind == "int":
        return _json_int(raw, where)
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
        return [
            _json_value(item, where)
            for item in _json_list(_json_object(raw, where), "values", "values", where)
        ]
    if kind == "kvlist":
        pairs = _json_list(_json_object(raw, where), "values", "values", where)
        return {key: _json_value(item, where) for key, item in _json_pairs(pairs, where)}
    raise MalformedPayload(f"{where}: {str(raw)[:40]!r} is not a valid {kind}Value")


def _json_pairs(pairs: list[Any], where: str) -> Iterator[tuple[str, Any]]:
    for pair in pairs:
        key = _json_object(pair, where).get("key")
        if not isinstance(key, str):
            raise MalformedPayload(f"{where}: attribute key {str(key)[:40]!r} is not a string")
        yield key, pair.get("value")


def _json_attributes(obj: Mapping[str, Any], where: str) -> dict[str, Any]:
    pairs = _json_list(obj, "attributes", "attributes", where)
    return {
        key: to_wire_value(_json_value(value, f"{where}.attributes"))
        for key, value in _json_pairs(pairs, where)
    }


def _json_event_name(record: Mapping[str, Any]) -> str:
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


_JSON_LOGS = (("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"), ("logRecords", "log_records"))
_JSON_SPANS = (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans", "spans"))


class _JsonItem(NamedTuple):
    """A log record or span, its path for messages, and its resource's attributes (read on demand)."""

    obj: dict[str, Any]
    at: str
    entry: dict[str, Any]
    where: str


def _json_items(payload: object, path: tuple[tuple[str, str], ...]) -> Iterator[_JsonItem]:
    """The records (or spans) of an OTLP/JSON request, every container on the way type-checked."""
    (outer, outer_snake), (middle, middle_snake), (inner, inner_snake) = path
    for i, raw_entry in enumerate(_json_list(_json_object(payload, "the body"), outer, outer_snake, "body")):
        where = f"{outer}[{i}]"
        entry = _json_object(raw_entry, where)
        for j, scope in enumerate(_json_list(entry, middle, middle_snake, where)):
            scope_where = f"{where}.{middle}[{j}]"
            items = _json_list(_json_object(scope, scope_where), inner, inner_snake, scope_where)
            for k, item in enumerate(items):
                at = f"{scope_where}.{inner}[{k}]"
                yield _JsonItem(_json_object(item, at), at, entry, where)


class _Resources:
    """Resource attributes converted once per resource entry, and only if it has routing events."""

    def __init__(self) -> None:
        self._by_entry: dict[str, dict[str, Any]] = {}

    def of(self, item: _JsonItem) -> dict[str, Any]:
        if item.where not in self._by_entry:
            resource = _get(item.entry, "resource", "resource")
            self._by_entry[item.where] = (
                {} if resource is None else _json_attributes(_json_object(resource, item.where), item.where)
            )
        return self._by_entry[item.where]


def _json_logs(payload: object) -> Iterator[list[_Candidate]]:
    resources = _Resources()
    for item in _json_items(payload, _JSON_LOGS):
        record, at = item.obj, item.at
        name = _json_event_name(record)
        if not name.startswith(EVENT_NAME_PREFIX):
            continue
        timestamp = _json_int(_get(record, "timeUnixNano", "time_unix_nano"), f"{at}.timeUnixNano")
        if not timestamp:
            observed = _get(record, "observedTimeUnixNano", "observed_time_unix_nano")
            timestamp = _json_int(observed, f"{at}.observedTimeUnixNano")
        body = to_wire_value(_json_value(record.get("body"), f"{at}.body"))
        trace_id = _json_id(_get(record, "traceId", "trace_id"), f"{at}.traceId")
        span_id = _json_id(_get(record, "spanId", "span_id"), f"{at}.spanId")
        attributes = _json_attributes(record, at)
        yield [_Candidate(name, timestamp, attributes, resources.of(item), body, trace_id, span_id)]


def _json_spans(payload: object) -> Iterator[list[_Candidate]]:
    resources = _Resources()
    for item in _json_items(payload, _JSON_SPANS):
        span, at = item.obj, item.at
        unit = []
        for n, raw_event in enumerate(_json_list(span, "events", "events", at)):
            event_at = f"{at}.events[{n}]"
            event = _json_object(raw_event, event_at)
            name = event.get("name")
            if not isinstance(name, str) or not name.startswith(EVENT_NAME_PREFIX):
                continue
            timestamp = _json_int(_get(event, "timeUnixNano", "time_unix_nano"), f"{event_at}.timeUnixNano")
            trace_id = _json_id(_get(span, "traceId", "trace_id"), f"{at}.traceId")
            span_id = _json_id(_get(span, "spanId", "span_id"), f"{at}.spanId")
            attributes = _json_attributes(event, event_at)
            unit.append(_Candidate(name, timestamp, attributes, resources.of(item), None, trace_id, span_id))
        if unit:
            yield unit


def _parse_json(data: bytes) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"not JSON: {exc}") from None


def decode(signal: Signal, data: bytes, *, json_encoded: bool) -> Decoded:
    """The routing events in one export request body (already decompressed).

    The whole body is read before anything is returned, so a malformed one yields nothing.
    """
    try:
        if json_encoded:
            payload = _parse_json(data)
            return _collect(list(_json_logs(payload) if signal is Signal.LOGS else _json_spans(payload)))
        if signal is Signal.LOGS:
            return _collect(list(_protobuf_logs(_parse_protobuf(ExportLogsServiceRequest(), signal, data))))
        return _collect(list(_protobuf_spans(_parse_protobuf(ExportTraceServiceRequest(), signal, data))))
    except RecursionError:
        raise MalformedPayload("values are nested too deeply") from None
