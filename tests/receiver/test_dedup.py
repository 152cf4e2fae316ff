"""Deduplication: a decision sent again or exported both ways is written once; two different
decisions are never merged."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from receiver.receiver_harness import RunningReceiver

from sollol_otel.receiver.app import decode
from sollol_otel.receiver.dedup import TWIN_TOLERANCE_NS, RecentDecisions
from sollol_otel.receiver.records import ReceivedEvent, Signal

TRACE_ID = bytes(range(1, 17))
SPAN_ID = bytes(range(1, 9))
NAME = "sollol.routing.route_decision"
T0 = 1_764_201_600_000_000_000
MS = 1_000_000
RESOURCE = Resource(
    attributes=[KeyValue(key="service.instance.id", value=AnyValue(string_value="node_1_ab"))]
)


def attributes(model: str, **extra: str) -> list[KeyValue]:
    """A decision's attributes; `sollol__event_id=` names `sollol.event_id`."""
    values = {"gen_ai.request.model": model, "sollol.backend": "ollama"}
    values.update({key.replace("__", "."): value for key, value in extra.items()})
    return [KeyValue(key=key, value=AnyValue(string_value=value)) for key, value in values.items()]


def log(model: str, time_ns: int = T0, *, traced: bool = True, **extra: str) -> LogRecord:
    ids = {"trace_id": TRACE_ID, "span_id": SPAN_ID} if traced else {}
    return LogRecord(event_name=NAME, time_unix_nano=time_ns, attributes=attributes(model, **extra), **ids)


def span_event(model: str, time_ns: int = T0, **extra: str) -> Span.Event:
    return Span.Event(name=NAME, time_unix_nano=time_ns, attributes=attributes(model, **extra))


def logs(*records: LogRecord) -> list[ReceivedEvent]:
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=RESOURCE, scope_logs=[ScopeLogs(log_records=records)])]
    )
    return decode(Signal.LOGS, request.SerializeToString(), json_encoded=False).events


def spans(*events: Span.Event) -> list[ReceivedEvent]:
    span = Span(trace_id=TRACE_ID, span_id=SPAN_ID, name="chat", events=events)
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=RESOURCE, scope_spans=[ScopeSpans(spans=[span])])]
    )
    return decode(Signal.TRACES, request.SerializeToString(), json_encoded=False).events


def models(events: list[ReceivedEvent]) -> list[str]:
    return [event.fields["model"] for event in events]


def test_a_request_sent_again_is_written_once() -> None:
    recent = RecentDecisions()
    request = [log("a", traced=False), log("b", traced=False)]

    assert models(recent.fresh(logs(*request))) == ["a", "b"]
    assert recent.fresh(logs(*request)) == []


def test_identical_records_in_one_request_are_all_written() -> None:
    recent = RecentDecisions()

    assert models(recent.fresh(logs(log("a"), log("a")))) == ["a", "a"]


def test_a_retry_of_identical_records_is_written_once() -> None:
    recent = RecentDecisions()
    recent.fresh(logs(log("a"), log("a")))

    assert recent.fresh(logs(log("a"), log("a"))) == []


def test_decisions_for_different_models_in_one_span_and_millisecond_are_all_written() -> None:
    recent = RecentDecisions()

    fresh = recent.fresh(logs(*(log(model) for model in "abcde")))

    assert models(fresh) == list("abcde")


def test_a_span_event_twin_a_little_apart_in_time_is_merged_with_its_log_record() -> None:
    recent = RecentDecisions()
    recent.fresh(logs(log("a", T0)))

    assert recent.fresh(spans(span_event("a", T0 + MS // 2))) == []


def test_a_log_record_arriving_after_its_span_event_twin_is_merged() -> None:
    recent = RecentDecisions()
    recent.fresh(spans(span_event("a", T0)))

    assert recent.fresh(logs(log("a", T0 + MS // 2))) == []


def test_a_span_event_further_apart_than_the_tolerance_is_another_decision() -> None:
    recent = RecentDecisions()
    recent.fresh(logs(log("a", T0)))

    assert models(recent.fresh(spans(span_event("a", T0 + TWIN_TOLERANCE_NS + 1)))) == ["a"]


def test_a_span_event_with_other_attributes_is_another_decision() -> None:
    recent = RecentDecisions()
    recent.fresh(logs(log("a", T0)))

    assert models(recent.fresh(spans(span_event("b", T0)))) == ["b"]


def test_each_log_record_pairs_with_one_span_event() -> None:
    recent = RecentDecisions()
    recent.fresh(logs(log("a", T0), log("a", T0 + MS)))

    fresh = recent.fresh(spans(span_event("a", T0), span_event("a", T0 + MS), span_event("a", T0 + 2 * MS)))

    assert len(fresh) == 1


def test_five_decisions_and_their_twins_are_five_events() -> None:
    recent = RecentDecisions()
    first = recent.fresh(logs(*(log(model, T0) for model in "abcde")))

    twins = recent.fresh(spans(*(span_event(model, T0 + 300_000) for model in "abcde")))

    assert models(first) == list("abcde") and twins == []


def test_one_event_id_is_one_decision_whatever_the_time() -> None:
    recent = RecentDecisions()
    recent.fresh(logs(log("a", sollol__event_id="d-1")))

    assert recent.fresh(spans(span_event("a", T0 + 50 * MS, sollol__event_id="d-1"))) == []


def test_different_event_ids_are_different_decisions_even_when_identical() -> None:
    recent = RecentDecisions()
    recent.fresh(logs(log("a", traced=False, sollol__event_id="d-1")))

    fresh = recent.fresh(logs(log("a", traced=False, sollol__event_id="d-2")))

    assert models(fresh) == ["a"]


def test_records_without_time_or_event_id_in_separate_requests_all_land(
    receiver: RunningReceiver, stream_events: Callable[[], list[dict[str, Any]]]
) -> None:
    timeless = {"eventName": NAME, "timeUnixNano": "0", "observedTimeUnixNano": "0"}
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [timeless]}]}]}).encode()

    answers = [
        httpx.post(f"{receiver.url}/v1/logs", content=body, headers={"Content-Type": "application/json"})
        for _ in range(3)
    ]
    receiver.flush()

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert len(stream_events()) == 3


def test_a_timeless_span_event_is_not_taken_for_a_timeless_log_records_twin() -> None:
    recent = RecentDecisions()
    recent.fresh(logs(log("a", 0)))

    assert models(recent.fresh(spans(span_event("a", 0)))) == ["a"]


def test_identical_records_of_a_request_written_in_parts_are_all_written() -> None:
    recent = RecentDecisions()
    request = logs(log("a"), log("a"), log("a"))
    seen: dict[object, int] = {}

    first, looked = recent.next_part(request, 2, seen)
    rest, _ = recent.next_part(request[looked:], 2, seen)

    assert (models(first), models(rest)) == (["a", "a"], ["a"])
    assert recent.fresh(request) == []  # the whole request, sent again
