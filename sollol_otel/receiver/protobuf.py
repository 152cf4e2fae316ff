"""Protobuf OTLP export requests → the routing records they carry.

The generated classes (upb) parse the body, checking that all text is valid UTF-8; only log
records and span events named in our namespace are converted further, everything else an SDK or
Collector sends along is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

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

    Non-empty strings (most attributes) are taken first, without asking which kind the value is,
    then integers and booleans; only the rest go through the general conversion. This loop is
    most of the receiver's CPU time per event.
    """
    converted: dict[str, Any] = {}
    for pair in pairs:
        value = pair.value
        text = value.string_value  # "" for a value of another kind
        if text:
            converted[pair.key] = text if len(text) <= MAX_STRING_CHARS else truncate(text)
            continue
        kind = value.WhichOneof("value")
        if kind in ("int_value", "bool_value"):
            converted[pair.key] = getattr(value, kind)
        else:
            converted[pair.key] = to_wire_value(_value(value))
    return converted


def _log_event_name(record: LogRecord) -> str:
    if record.event_name:
        return str(record.event_name)
    for pair in record.attributes:
        if pair.key == EVENT_NAME_ATTRIBUTE:
            return str(pair.value.string_value)
    return ""


def _logs(request: ExportLogsServiceRequest) -> Iterator[Unit]:
    for resource_logs in request.resource_logs:
        resource: dict[str, Any] | None = None
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                name = _log_event_name(record)
                if not in_our_namespace(name):
                    continue
                if resource is None:
                    resource = _attributes(resource_logs.resource.attributes)
                body = to_wire_value(_value(record.body)) if record.HasField("body") else None
                timestamp = record.time_unix_nano or record.observed_time_unix_nano
                attributes = _attributes(record.attributes)
                yield [
                    Candidate(
                        name,
                        timestamp,
                        attributes,
                        resource,
                        body,
                        record.trace_id,
                        record.span_id,
                        False,
                        True,
                    )
                ]


def _spans(request: ExportTraceServiceRequest) -> Iterator[Unit]:
    for resource_spans in request.resource_spans:
        resource: dict[str, Any] | None = None
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                unit: Unit = []
                for event in span.events:
                    if not in_our_namespace(event.name):
                        continue
                    if resource is None:
                        resource = _attributes(resource_spans.resource.attributes)
                    attributes = _attributes(event.attributes)
                    unit.append(
                        Candidate(
                            event.name,
                            event.time_unix_nano,
                            attributes,
                            resource,
                            None,
                            span.trace_id,
                            span.span_id,
                            True,
                            True,
                        )
                    )
                if unit:
                    yield unit


Request = TypeVar("Request", ExportLogsServiceRequest, ExportTraceServiceRequest)


def _parse(request: Request, signal: Signal, data: bytes) -> Request:
    try:
        request.ParseFromString(data)
    except (DecodeError, RecursionError) as exc:  # upb stops at 100 levels; the pure-Python parser recurses
        raise MalformedPayload(f"not a protobuf OTLP {signal.value} export request: {exc}") from None
    return request


def read(signal: Signal, data: bytes) -> Decoded:
    """The routing events of a protobuf export request; the whole body is parsed first, so a
    malformed one raises MalformedPayload and yields nothing."""
    if signal is Signal.LOGS:
        return collect(_logs(_parse(ExportLogsServiceRequest(), signal, data)))
    return collect(_spans(_parse(ExportTraceServiceRequest(), signal, data)))
