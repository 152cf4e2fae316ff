"""The receiver's HTTP contract: OTLP responses, refusals that write nothing, limits, token, metrics."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from prometheus_client.parser import text_string_to_metric_families
from receiver.receiver_harness import RunningReceiver
from redis_servers import free_port
from waiting import eventually

from sollol_otel.receiver import ReceiverConfig
from sollol_otel.receiver.app import MAX_BODY_BYTES
from sollol_otel.wire import MAX_STRING_CHARS, RoutingEvent
from sollol_otel.wire import decode as read_entry

StreamEvents = Callable[[], list[dict[str, Any]]]
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
TRACE_ID = bytes(range(1, 17))
SPAN_ID = bytes(range(1, 9))


def _attrs(**values: str) -> list[KeyValue]:
    return [KeyValue(key=key.replace("__", "."), value=AnyValue(string_value=v)) for key, v in values.items()]


def log_record(name: str = "sollol.routing.route_decision", **overrides: Any) -> LogRecord:
    fields: dict[str, Any] = {
        "event_name": name,
        "time_unix_nano": 1_764_201_600_000_000_000,
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "body": AnyValue(string_value="🎯 llama3.2:3b → ollama | sufficient_resources"),
        "attributes": _attrs(gen_ai__request__model="llama3.2:3b", sollol__backend="ollama"),
    }
    fields.update(overrides)
    return LogRecord(**fields)


def logs_request(*records: LogRecord) -> bytes:
    scope = ScopeLogs(log_records=records)
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[scope])]).SerializeToString()


def json_logs_request(*records: dict[str, Any]) -> bytes:
    return json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": list(records)}]}]}).encode()


def json_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventName": "sollol.routing.route_decision",
        "timeUnixNano": "1764201600000000000",
        "traceId": TRACE_ID.hex(),
        "spanId": SPAN_ID.hex(),
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "llama3.2:3b"}}],
    }
    record.update(overrides)
    return record


def post(receiver: RunningReceiver, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    response = httpx.post(receiver.url + path, content=body, headers=headers, timeout=10)
    receiver.flush()
    return response


def test_protobuf_logs_get_an_empty_protobuf_response(
    receiver: RunningReceiver, stream_events: StreamEvents
) -> None:
    response = post(receiver, "/v1/logs", logs_request(log_record()), PROTOBUF)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    [event] = stream_events()
    assert event["trace_id"] == TRACE_ID.hex() and event["model"] == "llama3.2:3b"


def test_otlp_json_hex_ids_and_string_int64s_are_decoded(
    receiver: RunningReceiver, stream_events: StreamEvents
) -> None:
    response = post(receiver, "/v1/logs", json_logs_request(json_record()), JSON)

    assert response.status_code == 200 and response.json() == {}
    [event] = stream_events()
    assert (event["trace_id"], event["span_id"]) == (TRACE_ID.hex(), SPAN_ID.hex())
    assert event["timestamp"] == "2025-11-27T00:00:00.000000"


def test_unusable_routing_records_are_counted_in_partial_success(
    receiver: RunningReceiver, stream_events: StreamEvents
) -> None:
    body = logs_request(
        log_record(),
        log_record("sollol.routing.Not-A-Type!"),
        log_record("sollol.route_decision"),
        log_record(trace_id=b"\x01\x02\x03", time_unix_nano=1_764_201_600_000_000_001),
        log_record("app.startup"),
    )
    response = post(receiver, "/v1/logs", body, PROTOBUF)

    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert response.status_code == 200 and partial.rejected_log_records == 3
    assert "'sollol.route_decision' is not a routing event name" in partial.error_message
    assert "trace id of 3 bytes" in partial.error_message
    assert len(stream_events()) == 1
    assert receiver.counted("sollol_receiver_events_total", signal="logs", outcome="rejected") == 3


def test_json_partial_success_uses_otlp_json_field_names(receiver: RunningReceiver) -> None:
    response = post(receiver, "/v1/logs", json_logs_request(json_record(eventName="sollol.routing.")), JSON)

    assert response.json()["partialSuccess"]["rejectedLogRecords"] == "1"


def test_a_span_with_unusable_routing_events_counts_once_in_rejected_spans(
    receiver: RunningReceiver, stream_events: StreamEvents
) -> None:
    bad = Span.Event(name="sollol.routing.", time_unix_nano=1)
    good = Span.Event(
        name="sollol.routing.cache_hit", time_unix_nano=2, attributes=_attrs(sollol__backend="ollama")
    )
    span = Span(trace_id=TRACE_ID, span_id=SPAN_ID, name="chat", events=[bad, bad, good])
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    response = post(receiver, "/v1/traces", request.SerializeToString(), PROTOBUF)

    assert ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 1
    assert [e["event_type"] for e in stream_events()] == ["CACHE_HIT"]


def test_the_same_request_sent_twice_is_written_once_and_the_second_answer_says_so(
    receiver: RunningReceiver, stream_events: StreamEvents
) -> None:
    body = logs_request(log_record())
    post(receiver, "/v1/logs", body, PROTOBUF)
    response = post(receiver, "/v1/logs", body, PROTOBUF)

    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_log_records == 0 and "already written" in partial.error_message
    assert len(stream_events()) == 1
    assert receiver.counted("sollol_receiver_events_total", signal="logs", outcome="duplicate") == 1


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b"\xff\xff\xff\xff", PROTOBUF, "not a protobuf OTLP logs export request"),
        (b'{"resourceLogs": [', JSON, "not JSON"),
        (b"[1, 2]", JSON, "must be an object"),
        (b'{"resourceLogs": "many"}', JSON, "resourceLogs must be a list"),
    ],
    ids=["protobuf", "json-syntax", "json-array", "json-shape"],
)
def test_malformed_payload_is_refused_with_400_and_nothing_written(
    receiver: RunningReceiver,
    stream_events: StreamEvents,
    body: bytes,
    headers: dict[str, str],
    expected: str,
) -> None:
    response = post(receiver, "/v1/logs", body, headers)

    assert response.status_code == 400
    if headers is JSON:
        assert expected in response.json()["message"]
    else:
        assert expected in Status.FromString(response.content).message
    assert stream_events() == []


def test_a_valid_record_in_a_malformed_payload_is_not_written(
    receiver: RunningReceiver, stream_events: StreamEvents
) -> None:
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [json_record()]}, 3]}]}).encode()

    assert post(receiver, "/v1/logs", body, JSON).status_code == 400
    assert stream_events() == []


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (json_record(spanId="zz"), "spanId is not hex"),
        (json_record(timeUnixNano=str(10**30)), "time 1000000000000000000000000000000 ns is outside"),
    ],
    ids=["span-id", "time-1e30"],
)
def test_a_record_with_a_bad_field_is_rejected_alone_and_the_rest_is_written(
    receiver: RunningReceiver, stream_events: StreamEvents, bad: dict[str, Any], reason: str
) -> None:
    response = post(receiver, "/v1/logs", json_logs_request(json_record(), bad), JSON)

    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    assert reason in response.json()["partialSuccess"]["errorMessage"]
    assert [event["model"] for event in stream_events()] == ["llama3.2:3b"]


def test_a_lone_surrogate_is_replaced_and_every_event_of_the_request_lands(
    receiver: RunningReceiver, stream_events: StreamEvents
) -> None:
    records = [json_record(timeUnixNano=str(1_764_201_600_000_000_000 + n)) for n in range(3)]
    body = json_logs_request(*records).replace(b'"llama3.2:3b"', b'"llama\\ud800"', 1)

    response = post(receiver, "/v1/logs", body, JSON)

    assert "replaced by U+FFFD" in response.json()["partialSuccess"]["errorMessage"]
    assert [event["model"] for event in stream_events()] == ["llama\ufffd", "llama3.2:3b", "llama3.2:3b"]


def test_an_event_over_the_readers_limit_is_written_truncated_and_readers_read_it(
    receiver: RunningReceiver, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    blobs = [{"key": f"sollol.blob{n}", "value": {"stringValue": "x" * MAX_STRING_CHARS}} for n in range(300)]
    record = json_record(attributes=[*json_record()["attributes"], *blobs])

    response = post(receiver, "/v1/logs", json_logs_request(record), JSON)

    assert "lost their largest attributes" in response.json()["partialSuccess"]["errorMessage"]
    [(_, entry)] = redis_client.xrange(keys[0])
    event = read_entry(entry)
    assert isinstance(event, RoutingEvent) and event.model == "llama3.2:3b"
    assert event.fields["dropped_attributes_count"] > 0


def test_unsupported_content_type_gets_415_in_readable_json(receiver: RunningReceiver) -> None:
    response = post(receiver, "/v1/logs", b"hello", {"Content-Type": "text/plain"})

    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]


def test_unsupported_content_encoding_gets_415(receiver: RunningReceiver) -> None:
    response = post(receiver, "/v1/logs", logs_request(log_record()), {**PROTOBUF, "Content-Encoding": "br"})

    assert response.status_code == 415


def test_gzip_and_deflate_bodies_are_accepted(receiver: RunningReceiver, stream_events: StreamEvents) -> None:
    first = logs_request(log_record())
    second = logs_request(log_record(time_unix_nano=1_764_201_600_000_000_002))
    post(receiver, "/v1/logs", gzip.compress(first), {**PROTOBUF, "Content-Encoding": "gzip"})
    post(receiver, "/v1/logs", zlib.compress(second), {**PROTOBUF, "Content-Encoding": "deflate"})

    assert len(stream_events()) == 2


def test_corrupt_gzip_is_refused_with_400(receiver: RunningReceiver) -> None:
    body = gzip.compress(logs_request(log_record()))[:-12]

    response = post(receiver, "/v1/logs", body, {**PROTOBUF, "Content-Encoding": "gzip"})

    assert response.status_code == 400


def test_oversized_body_is_refused_with_413(
    start_receiver: Callable[..., RunningReceiver], stream_events: StreamEvents
) -> None:
    receiver = start_receiver(ReceiverConfig(max_body_bytes=1000))

    response = post(receiver, "/v1/logs", logs_request(*[log_record()] * 20), PROTOBUF)

    assert response.status_code == 413 and stream_events() == []


def test_gzip_that_inflates_past_the_limit_is_refused_with_413(
    start_receiver: Callable[..., RunningReceiver],
) -> None:
    receiver = start_receiver(ReceiverConfig(max_body_bytes=10_000))
    bomb = gzip.compress(b"\x00" * 1_000_000)

    response = post(receiver, "/v1/logs", bomb, {**PROTOBUF, "Content-Encoding": "gzip"})

    assert len(bomb) < 10_000 and response.status_code == 413


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic czNjcmV0LXRva2Vu"])
def test_request_without_the_right_bearer_token_gets_401(
    start_receiver: Callable[..., RunningReceiver], stream_events: StreamEvents, authorization: str | None
) -> None:
    receiver = start_receiver(ReceiverConfig(token="s3cret-token"))
    headers = {**PROTOBUF, **({"Authorization": authorization} if authorization else {})}

    response = post(receiver, "/v1/logs", logs_request(log_record()), headers)

    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert "s3cret" not in response.text and stream_events() == []


def test_get_on_an_export_path_is_405(receiver: RunningReceiver) -> None:
    assert httpx.get(receiver.url + "/v1/logs").status_code == 405


def test_redis_not_keeping_up_gets_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch, start_receiver: Callable[..., RunningReceiver]
) -> None:
    monkeypatch.setenv("SOLLOL_REDIS_URL", f"redis://127.0.0.1:{free_port()}")  # nobody listens there
    monkeypatch.setenv("SOLLOL_ROUTING_BACKLOG", "3")
    receiver = start_receiver(ReceiverConfig(shutdown_timeout=0.2))
    url = receiver.url + "/v1/logs"
    records = [log_record(time_unix_nano=n + 1) for n in range(3)]

    first = httpx.post(url, content=logs_request(*records), headers=PROTOBUF)
    second = httpx.post(url, content=logs_request(log_record(time_unix_nano=99)), headers=PROTOBUF)

    assert first.status_code == 200
    assert second.status_code == 503 and second.headers["retry-after"] == "2"


def test_metrics_count_requests_and_events_by_outcome(receiver: RunningReceiver) -> None:
    post(receiver, "/v1/logs", logs_request(log_record(), log_record("sollol.routing.")), PROTOBUF)
    post(receiver, "/v1/logs", b"junk", PROTOBUF)

    response = httpx.get(receiver.url + "/metrics")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }

    assert response.headers["content-type"].startswith("text/plain; version=")
    assert samples["sollol_receiver_requests_total", (("code", "200"), ("signal", "logs"))] == 1
    assert samples["sollol_receiver_requests_total", (("code", "400"), ("signal", "logs"))] == 1
    assert samples["sollol_receiver_events_total", (("outcome", "accepted"), ("signal", "logs"))] == 1
    assert samples["sollol_receiver_events_total", (("outcome", "rejected"), ("signal", "logs"))] == 1
    assert samples["sollol_receiver_redis_written_total", ()] == 1


def test_requests_over_the_bytes_in_flight_cap_get_503_with_retry_after(
    start_receiver: Callable[..., RunningReceiver], stream_events: StreamEvents
) -> None:
    receiver = start_receiver(ReceiverConfig(max_bytes_in_flight=1000))
    host, port = receiver.url.removeprefix("http://").split(":")
    head = f"POST /v1/logs HTTP/1.1\r\nHost: {host}\r\nContent-Type: {PROTOBUF['Content-Type']}\r\n"
    with socket.create_connection((host, int(port))) as slow_sender:  # declares 900 bytes, sends 10
        slow_sender.sendall(f"{head}Content-Length: 900\r\n\r\n".encode() + b"\x00" * 10)
        eventually(lambda: receiver.receiver.in_flight.used == 900, what="the slow request's bytes claimed")

        refused = post(receiver, "/v1/logs", logs_request(log_record()), PROTOBUF)

    assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
    assert "being decoded; retry later" in Status.FromString(refused.content).message
    eventually(lambda: receiver.receiver.in_flight.used == 0, what="the slow request's bytes released")
    assert post(receiver, "/v1/logs", logs_request(log_record()), PROTOBUF).status_code == 200
    assert len(stream_events()) == 1


def test_healthz_answers_while_a_15_mb_request_is_decoded(receiver: RunningReceiver) -> None:
    # Many small attributes: seconds of decoding, so /healthz is asked and answered well within it.
    attributes = _attrs(**{f"k{n}": "v" for n in range(170)})
    records = [
        log_record(time_unix_nano=1_764_201_600_000_000_000 + n, attributes=attributes) for n in range(7_000)
    ]
    body = logs_request(*records)
    assert 15_000_000 < len(body) < MAX_BODY_BYTES
    url = receiver.url + "/v1/logs"
    big = threading.Thread(
        target=httpx.post, args=(url,), kwargs={"content": body, "headers": PROTOBUF, "timeout": 60}
    )
    big.start()
    try:
        eventually(lambda: receiver.receiver.decoding == 1, what="the big request to be decoding")

        health = httpx.get(receiver.url + "/healthz", timeout=10)

        assert health.status_code == 200 and receiver.receiver.decoding == 1  # answered meanwhile
    finally:
        big.join(60)


def test_healthz_reports_redis_connection(receiver: RunningReceiver) -> None:
    response = httpx.get(receiver.url + "/healthz")

    assert response.status_code == 200
    assert response.json() | {"stream": "", "redis_url": ""} == {
        "status": "ok",
        "state": "ok",
        "reason": None,
        "redis_connected": True,
        "redis_url": "",
        "stream": "",
        "writer": {"state": "ok", "last_error": None, "dropped": 0},
        "backlog": 0,
    }
