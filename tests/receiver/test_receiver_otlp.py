"""Decoding OTLP requests into wire events: what counts as ours, how values are carried, and how
one bad record is rejected or repaired alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from sollol_otel.receiver.app import decode
from sollol_otel.receiver.records import DROPPED_ATTRIBUTES_COUNT, Decoded, MalformedPayload, Signal
from sollol_otel.wire import MAX_ENTRY_BYTES, MAX_STRING_CHARS, TRUNCATION_MARK, RoutingEvent
from sollol_otel.wire import decode as read_entry

ROUTE_DECISION = "sollol.routing.route_decision"


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


def text(key: str, value: str) -> KeyValue:
    return attribute(key, AnyValue(string_value=value))


def json_logs(*records: dict[str, Any]) -> bytes:
    return json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": list(records)}]}]}).encode()


def json_attribute(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def json_record(model: str = "llama3.2:3b", **overrides: Any) -> dict[str, Any]:
    record = {
        "eventName": ROUTE_DECISION,
        "timeUnixNano": "1764201600000000000",
        "attributes": [json_attribute("gen_ai.request.model", {"stringValue": model})],
    }
    return {**record, **overrides}


def json_events(*records: dict[str, Any]) -> Decoded:
    return decode(Signal.LOGS, json_logs(*records), json_encoded=True)


def test_event_name_in_an_attribute_is_recognised_for_older_senders() -> None:
    record = LogRecord(attributes=[text("event.name", "sollol.routing.cache_hit")])

    [event] = log_events(request(record)).events

    assert event.fields["event_type"] == "CACHE_HIT" and "event.name" not in event.fields


def test_unknown_but_well_formed_event_type_is_kept_for_newer_producers() -> None:
    [event] = log_events(request(LogRecord(event_name="sollol.routing.gpu_evicted"))).events

    assert event.fields["event_type"] == "GPU_EVICTED"


@pytest.mark.parametrize("name", ["SOLLOL.ROUTING.ROUTE_DECISION", "Sollol.Routing.Route_Decision"])
def test_event_names_are_read_in_any_case(name: str) -> None:
    [event] = log_events(request(LogRecord(event_name=name))).events

    assert event.fields["event_type"] == "ROUTE_DECISION"


@pytest.mark.parametrize("name", ["sollol.route_decision", "sollol.routing.", "sollol.routing.Not-A-Type!"])
def test_near_misses_in_our_namespace_are_rejected_with_the_expected_form(name: str) -> None:
    decoded = log_events(request(LogRecord(event_name=name), LogRecord(event_name=ROUTE_DECISION)))

    assert decoded.rejected == 1 and len(decoded.events) == 1
    assert "is not a routing event name (expected sollol.routing.<event type>" in decoded.error_message(
        Signal.LOGS
    )


def test_records_outside_our_namespace_are_ignored_not_rejected() -> None:
    decoded = log_events(request(LogRecord(event_name="gen_ai.client.inference"), LogRecord(body=AnyValue())))

    assert decoded.events == [] and decoded.rejected == 0 and decoded.error_message(Signal.LOGS) == ""


def test_map_attributes_become_json_text_and_long_strings_are_cut() -> None:
    nested = AnyValue(kvlist_value=KeyValueList(values=[attribute("vram_mb", AnyValue(int_value=8192))]))
    record = LogRecord(
        event_name=ROUTE_DECISION,
        attributes=[attribute("sollol.node", nested), text("sollol.reason", "x" * 10_000)],
    )

    [event] = log_events(request(record)).events

    assert event.fields["node"] == '{"vram_mb": 8192}'
    assert len(event.fields["reason"]) == MAX_STRING_CHARS and event.fields["reason"].endswith(
        TRUNCATION_MARK
    )


def test_observed_time_stands_in_when_the_record_has_no_time() -> None:
    record = LogRecord(event_name=ROUTE_DECISION, observed_time_unix_nano=1_764_201_600_000_000_000)

    [event] = log_events(request(record)).events

    assert event.fields["timestamp"] == "2025-11-27T00:00:00.000000"


def test_resource_attributes_fill_instance_and_service() -> None:
    resource = {"service.instance.id": "gpu_1_abcdef12", "service.name": "router-a", "host.name": "gpu"}

    [event] = log_events(request(LogRecord(event_name=ROUTE_DECISION), resource=resource)).events

    fields = event.fields
    assert (fields["instance_id"], fields["service"], fields["hostname"]) == (
        "gpu_1_abcdef12",
        "router-a",
        "gpu",
    )


def test_json_accepts_the_proto_field_names_too() -> None:
    body = b'{"resource_logs": [{"scope_logs": [{"log_records": [{"event_name": "sollol.routing.cache_hit",'
    body += b' "trace_id": "0102030405060708090a0b0c0d0e0f10"}]}]}]}'

    [event] = decode(Signal.LOGS, body, json_encoded=True).events

    assert event.fields["trace_id"] == "0102030405060708090a0b0c0d0e0f10"


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

    [event] = json_events(record).events

    assert {key: event.fields[key] for key in ("active_tasks", "cpu_percent", "healthy", "gpus", "vram")} == {
        "active_tasks": 3,
        "cpu_percent": "nan",
        "healthy": True,
        "gpus": ["a", 2],
        "vram": '{"free": 1}',
    }
    assert (event.fields["raw"], event.fields["unset"]) == ("hi", None)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            json_record(attributes=[json_attribute("sollol.active_tasks", {"intValue": "three"})]),
            r"logRecords[1].attributes must be an integer, not 'three'",
        ),
        (
            json_record(attributes=[json_attribute("sollol.tasks", {"intValue": str(1 << 63)})]),
            "intValue 9223372036854775808 is outside int64",
        ),
        (json_record(traceId="not-hex"), "logRecords[1].traceId is not hex"),
        (json_record(timeUnixNano=str(10**30)), "time 1000000000000000000000000000000 ns is outside OTLP's"),
        (json_record(timeUnixNano=1e30), "timeUnixNano must be an integer"),
        (json_record(timeUnixNano="-1"), "time -1 ns is outside OTLP's"),
        (json_record(spanId="0102"), "span id of 2 bytes (OTLP requires 8)"),
    ],
    ids=["int-type", "int64-range", "trace-id", "time-1e30", "time-float", "time-negative", "span-id"],
)
def test_a_record_with_a_bad_field_is_rejected_alone(bad: dict[str, Any], reason: str) -> None:
    decoded = json_events(json_record("first"), bad, json_record("third"))

    assert [event.fields["model"] for event in decoded.events] == ["first", "third"]
    assert decoded.rejected == 1 and reason in decoded.error_message(Signal.LOGS)


def test_a_lone_surrogate_is_replaced_and_its_neighbours_are_untouched() -> None:
    body = json_logs(json_record("first"), json_record("second"), json_record("third")).replace(
        b'"second"', b'"sec\\ud800ond"'
    )

    decoded = decode(Signal.LOGS, body, json_encoded=True)

    assert [event.fields["model"] for event in decoded.events] == ["first", "sec\ufffdond", "third"]
    assert decoded.repaired == 1 and "replaced by U+FFFD" in decoded.error_message(Signal.LOGS)


def test_a_lone_surrogate_in_an_attribute_key_is_replaced() -> None:
    body = json_logs(json_record(attributes=[json_attribute("sollol.zone\\ud800", {"stringValue": "eu"})]))

    [event] = decode(Signal.LOGS, body.replace(b"\\\\ud800", b"\\ud800"), json_encoded=True).events

    assert event.fields["zone\ufffd"] == "eu"


def test_an_event_over_the_readers_limit_loses_its_largest_attributes_and_stays_readable() -> None:
    big = [json_attribute(f"sollol.blob{n}", {"stringValue": "x" * MAX_STRING_CHARS}) for n in range(300)]
    record = json_record(attributes=[json_attribute("gen_ai.request.model", {"stringValue": "m"}), *big])

    decoded = json_events(record)

    [event] = decoded.events
    entry = read_entry(json.dumps(event.fields).encode())
    assert isinstance(entry, RoutingEvent) and entry.model == "m"
    assert len(json.dumps(event.fields)) <= MAX_ENTRY_BYTES
    assert event.fields[DROPPED_ATTRIBUTES_COUNT] > 0 and decoded.truncated == 1


def test_a_malformed_container_refuses_the_whole_body() -> None:
    with pytest.raises(MalformedPayload, match=r"resourceLogs\[0\]\.scopeLogs must be a list"):
        decode(Signal.LOGS, b'{"resourceLogs": [{"scopeLogs": 3}]}', json_encoded=True)


def test_json_records_that_are_not_routing_events_are_not_inspected() -> None:
    other = {"body": {"stringValue": "GET /healthz"}, "traceId": 12, "attributes": [{"key": 1}]}

    decoded = json_events(other)

    assert decoded.events == [] and decoded.rejected == 0


def deep_value(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


def test_a_deeply_nested_value_never_costs_its_neighbours() -> None:
    deep = json_record(attributes=[json_attribute("sollol.deep", deep_value(300))])

    decoded = json_events(json_record("first"), deep, json_record("third"))

    assert {event.fields["model"] for event in decoded.events} >= {"first", "third"}
    assert len(decoded.events) + decoded.rejected == 3


def test_a_body_nested_deeper_than_json_can_read_is_refused() -> None:
    body = json_logs(json_record(attributes=[json_attribute("sollol.deep", {"stringValue": "x"})]))
    deep = b'{"arrayValue":{"values":[' * 5000 + b'{"stringValue":"x"}' + b"]}}" * 5000

    with pytest.raises(MalformedPayload, match="not JSON"):
        decode(Signal.LOGS, body.replace(b'{"stringValue": "x"}', deep), json_encoded=True)
