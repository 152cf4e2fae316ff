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
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from ..events import EVENT_NAME_PREFIX, EventType
from ..wire import to_wire_value

#: Where SDKs older than the LogRecord.event_name field (and some Collectors) put the event name.
EVENT_NAME_ATTRIBUTE = "event.name"
#: Event types we do not know yet (a newer producer) are kept if they look like one of ours.
_EVENT_TYPE_SUFFIX = re.compile(r"[a-z][a-z0-9_]{0,63}")
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


@dataclass(frozen=True)
class OtlpEvent:
    """One routing event as OTLP carried it, ready for `attributes.to_wire_fields`."""

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
    """Attributes as wire values: long strings cut, long lists shortened, maps as JSON text."""
    return {pair.key: to_wire_value(_value(pair.value)) for pair in pairs}


def event_type_of(name: str) -> str | None:
    """`sollol.routing.route_decision` → `ROUTE_DECISION`; None for names that are not ours."""
    known = EventType.from_event_name(name)
    if known is not None:
        return known.value
    suffix = name[len(EVENT_NAME_PREFIX) :]
    return suffix.upper() if _EVENT_TYPE_SUFFIX.fullmatch(suffix) else None


def _ids(trace_id: bytes, span_id: bytes) -> tuple[int, int] | str:
    """The ids as integers (0 when absent), or why they are unusable."""
    if len(trace_id) not in (0, _TRACE_ID_BYTES):
        return f"trace id of {len(trace_id)} bytes (OTLP requires {_TRACE_ID_BYTES})"
    if len(span_id) not in (0, _SPAN_ID_BYTES):
        return f"span id of {len(span_id)} bytes (OTLP requires {_SPAN_ID_BYTES})"
    return int.from_bytes(trace_id, "big"), int.from_bytes(span_id, "big")


def _log_event_name(record: LogRecord) -> str:
    if record.event_name:
        return record.event_name
    for pair in record.attributes:
        if pair.key == EVENT_NAME_ATTRIBUTE:
            return str(pair.value.string_value)
    return ""


def _routing_event(
    name: str,
    *,
    timestamp_ns: int,
    attributes: Iterable[KeyValue],
    resource: Mapping[str, Any],
    body: object,
    trace_id: bytes,
    span_id: bytes,
) -> OtlpEvent | str:
    """The event for a record named `sollol.routing.*`, or why it cannot be used."""
    event_type = event_type_of(name)
    if event_type is None:
        return f"{name[:100]!r} is not a routing event name"
    ids = _ids(trace_id, span_id)
    if isinstance(ids, str):
        return f"{name}: {ids}"
    attrs = _attributes(attributes)
    attrs.pop(EVENT_NAME_ATTRIBUTE, None)
    return OtlpEvent(
        event_type=event_type,
        timestamp_ns=timestamp_ns or None,
        attributes=attrs,
        resource=resource,
        body=body,
        trace_id=ids[0],
        span_id=ids[1],
    )


def log_events(request: ExportLogsServiceRequest) -> Decoded:
    """The routing events among a request's log records (by event name, or `event.name`)."""
    decoded = Decoded()
    for resource_logs in request.resource_logs:
        resource: dict[str, Any] | None = None
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                name = _log_event_name(record)
                if not name.startswith(EVENT_NAME_PREFIX):
                    continue
                if resource is None:
                    resource = _attributes(resource_logs.resource.attributes)
                event = _routing_event(
                    name,
                    timestamp_ns=record.time_unix_nano or record.observed_time_unix_nano,
                    attributes=record.attributes,
                    resource=resource,
                    body=to_wire_value(_value(record.body)) if record.HasField("body") else None,
                    trace_id=record.trace_id,
                    span_id=record.span_id,
                )
                if isinstance(event, str):
                    decoded.reject(event)
                else:
                    decoded.events.append(event)
    return decoded


def span_events(request: ExportTraceServiceRequest) -> Decoded:
    """The routing events recorded as span events; a span with an unusable one counts as rejected."""
    decoded = Decoded()
    for resource_spans in request.resource_spans:
        resource: dict[str, Any] | None = None
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                problem: str | None = None
                for span_event in span.events:
                    if not span_event.name.startswith(EVENT_NAME_PREFIX):
                        continue
                    if resource is None:
                        resource = _attributes(resource_spans.resource.attributes)
                    event = _routing_event(
                        span_event.name,
                        timestamp_ns=span_event.time_unix_nano,
                        attributes=span_event.attributes,
                        resource=resource,
                        body=None,
                        trace_id=span.trace_id,
                        span_id=span.span_id,
                    )
                    if isinstance(event, str):
                        problem = problem or event
                    else:
                        decoded.events.append(event)
                if problem is not None:  # OTLP counts rejected spans, not their events
                    decoded.reject(problem)
    return decoded


Request = TypeVar("Request", ExportLogsServiceRequest, ExportTraceServiceRequest)


def parse_protobuf(request: Request, signal: Signal, data: bytes) -> Request:
    try:
        request.ParseFromString(data)
    except (DecodeError, RecursionError) as exc:
        raise MalformedPayload(f"not a protobuf OTLP {signal.value} export request: {exc}") from None
    return request


#: Where OTLP/JSON puts hex-encoded ids (which proto3's JSON mapping would read as base64).
_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_CONTAINERS = {
    Signal.LOGS: (
        ("resourceLogs", "resource_logs"),
        ("scopeLogs", "scope_logs"),
        ("logRecords", "log_records"),
    ),
    Signal.TRACES: (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans",)),
}


def _items(obj: object, names: tuple[str, ...]) -> list[Any]:
    """The list under any of `names` in obj; anything odd is left for the protobuf parser to reject."""
    if not isinstance(obj, dict):
        return []
    for name in names:
        value = obj.get(name)
        if isinstance(value, list):
            return value
    return []


def _hex_ids_to_base64(item: MutableMapping[str, Any], where: str) -> None:
    for key in _ID_KEYS:
        value = item.get(key)
        if not isinstance(value, str):
            continue
        try:
            item[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
        except ValueError:
            raise MalformedPayload(f"{where}.{key} is not hex: {value[:40]!r}") from None


def _records(signal: Signal, payload: object) -> Iterator[tuple[MutableMapping[str, Any], str]]:
    outer, middle, inner = _CONTAINERS[signal]
    for i, resource_item in enumerate(_items(payload, outer)):
        for j, scope_item in enumerate(_items(resource_item, middle)):
            for k, record in enumerate(_items(scope_item, inner)):
                if isinstance(record, dict):
                    yield record, f"{outer[0]}[{i}].{middle[0]}[{j}].{inner[0]}[{k}]"


def parse_json(request: Request, signal: Signal, data: bytes) -> Request:
    """OTLP/JSON: proto3 JSON except that trace and span ids are hex, not base64."""
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedPayload(f"OTLP/JSON body must be an object, not {type(payload).__name__}")
    for record, where in _records(signal, payload):
        _hex_ids_to_base64(record, where)
        if signal is Signal.TRACES:
            for n, link in enumerate(_items(record, ("links",))):
                if isinstance(link, dict):
                    _hex_ids_to_base64(link, f"{where}.links[{n}]")
    try:
        json_format.ParseDict(payload, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError) as exc:
        raise MalformedPayload(f"not an OTLP/JSON {signal.value} export request: {exc}") from None
    return request


def decode(signal: Signal, data: bytes, *, json_encoded: bool) -> Decoded:
    """The routing events in one export request body (already decompressed)."""
    parse = parse_json if json_encoded else parse_protobuf
    if signal is Signal.LOGS:
        return log_events(parse(ExportLogsServiceRequest(), signal, data))
    return span_events(parse(ExportTraceServiceRequest(), signal, data))
