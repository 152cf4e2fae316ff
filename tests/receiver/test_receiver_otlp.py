"""Decoding OTLP requests into routing events: what counts as ours and how values are carried."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from sollol_otel.receiver.app import decode
from sollol_otel.receiver.records import Decoded, MalformedPayload, Signal
from sollol_otel.wire import MAX_STRING_CHARS, TRUNCATION_MARK


def request(*records: LogRecord, resource: dict[str, str] | None = None) -> ExportLogsServiceRequest:
    attributes = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in (resource or {}).items()]
    resource_logs = ResourceLogs(
        resource=Resource(attributes=attributes), scope_logs=[ScopeLogs(log_records=records)]
    )
    return ExportLogsServiceRequest(resource_logs=[resource_logs])


def log_events(request: ExportLogsServiceRequest) -> Decoded:
    return decode(Signal.LOGS, request.SerializeToString(), json_encoded=False)


def attribute(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def test_event_name_in_an_attribute_is_recognised_for_older_senders() -> None:
    record = LogRecord(
        attributes=[attribute("event.name", AnyValue(string_value="sollol.routing.cache_hit"))]
    )

    [event] = log_events(request(record)).events

    assert event.event_type == "CACHE_HIT" and "event.name" not in event.attributes


def test_unknown_but_well_formed_event_type_is_kept_for_newer_producers() -> None:
    [event] = log_events(request(LogRecord(event_name="sollol.routing.gpu_evicted"))).events

    assert event.event_type == "GPU_EVICTED"


def test_map_attributes_become_json_text_and_long_strings_are_cut() -> None:
    nested = AnyValue(kvlist_value=KeyValueList(values=[attribute("vram_mb", AnyValue(int_value=8192))]))
    record = LogRecord(
        event_name="sollol.routing.route_decision",
        attributes=[
            attribute("sollol.node", nested),
            attribute("sollol.reason", AnyValue(string_value="x" * 10_000)),
        ],
    )

    [event] = log_events(request(record)).events

    assert event.attributes["sollol.node"] == '{"vram_mb": 8192}'
    assert len(event.attributes["sollol.reason"]) == MAX_STRING_CHARS
    assert event.attributes["sollol.reason"].endswith(TRUNCATION_MARK)


def test_observed_time_stands_in_when_the_record_has_no_time() -> None:
    record = LogRecord(event_name="sollol.routing.route_decision", observed_time_unix_nano=42)

    [event] = log_events(request(record)).events

    assert event.timestamp_ns == 42


def test_resource_attributes_travel_with_each_event() -> None:
    record = LogRecord(event_name="sollol.routing.route_decision")

    [event] = log_events(request(record, resource={"service.instance.id": "gpu_1_abcdef12"})).events

    assert event.resource == {"service.instance.id": "gpu_1_abcdef12"}


def test_json_accepts_the_proto_field_names_too() -> None:
    body = b'{"resource_logs": [{"scope_logs": [{"log_records": [{"event_name": "sollol.routing.cache_hit",'
    body += b' "trace_id": "0102030405060708090a0b0c0d0e0f10"}]}]}]}'

    [event] = decode(Signal.LOGS, body, json_encoded=True).events

    assert event.trace_id == 0x0102030405060708090A0B0C0D0E0F10


def json_logs(*records: dict[str, Any]) -> bytes:
    return json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": list(records)}]}]}).encode()


def json_attribute(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def test_json_values_of_every_kind_are_read() -> None:
    record = {
        "eventName": "sollol.routing.worker_load",
        "attributes": [
            json_attribute("sollol.active_tasks", {"intValue": "3"}),
            json_attribute("sollol.cpu_percent", {"doubleValue": "NaN"}),
            json_attribute("sollol.healthy", {"boolValue": True}),
            json_attribute(
                "sollol.gpus", {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 2}]}}
            ),
            json_attribute(
                "sollol.vram", {"kvlistValue": {"values": [json_attribute("free", {"intValue": 1})]}}
            ),
            json_attribute("sollol.raw", {"bytesValue": "aGk="}),
            json_attribute("sollol.unset", {}),
        ],
    }

    [event] = decode(Signal.LOGS, json_logs(record), json_encoded=True).events

    assert event.attributes == {
        "sollol.active_tasks": 3,
        "sollol.cpu_percent": "nan",
        "sollol.healthy": True,
        "sollol.gpus": ["a", 2],
        "sollol.vram": '{"free": 1}',
        "sollol.raw": "hi",
        "sollol.unset": None,
    }


def test_json_value_of_the_wrong_type_makes_the_payload_malformed() -> None:
    record = {
        "eventName": "sollol.routing.worker_load",
        "attributes": [json_attribute("sollol.active_tasks", {"intValue": "three"})],
    }

    with pytest.raises(MalformedPayload, match=r"logRecords\[0\]\.attributes must be an integer"):
        decode(Signal.LOGS, json_logs(record), json_encoded=True)


def test_json_records_that_are_not_routing_events_are_not_inspected() -> None:
    other = {"body": {"stringValue": "GET /healthz"}, "traceId": 12, "attributes": [{"key": 1}]}

    decoded = decode(Signal.LOGS, json_logs(other), json_encoded=True)

    assert decoded.events == [] and decoded.rejected == 0


@pytest.mark.parametrize("depth", [400, 5000])
def test_deeply_nested_values_never_crash_the_decoder(depth: int) -> None:
    value = '{"arrayValue":{"values":[' * depth + '{"stringValue":"leaf"}' + "]}}" * depth
    body = '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"sollol.routing.route_decision",'
    body += '"attributes":[{"key":"deep","value":' + value + "}]}]}]}]}"

    with contextlib.suppress(MalformedPayload):  # too deep for this Python: refused, like any bad body
        decode(Signal.LOGS, body.encode(), json_encoded=True)
