"""Request chains for users who export nothing but Redis: decorated calls carry trace ids anyway.

Each test runs a router in a fresh interpreter, because this test session installs an SDK
TracerProvider globally and these tests are about the application that has none.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import redis

from sollol_otel.wire import Skipped, decode

ROUTER = textwrap.dedent(
    """
    import json, sys
    from opentelemetry import context, trace
    import sollol_otel
    from sollol_otel import EventType
    from sollol_otel.instrumentation import record_decision, routing_span

    class Router:
        @routing_span()
        def chat(self, model):
            self.choose(model)
            return self.select_node(model)

        @routing_span(fallback_to="rpc")
        def chat_failing(self, model):
            self.select_node(model)
            raise MemoryError("Out of memory")

        @record_decision(backend=lambda r: r)
        def choose(self, model):
            return "ollama"

        @record_decision(EventType.OLLAMA_NODE_SELECTED, node=lambda url: url)
        def select_node(self, model):
            return "10.0.0.7:11434"

    sollol_otel.configure()
    router = Router()
    for scenario in sys.argv[1:]:
        if scenario == "requests":
            router.chat("llama3.2:3b")
            router.chat("llama3.1:8b")
        elif scenario == "alone":
            router.choose("llama3.2:3b")
        elif scenario == "remote-parent":  # e.g. a traceparent header extracted by the application
            parent = trace.SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(1))
            token = context.attach(trace.set_span_in_context(trace.NonRecordingSpan(parent)))
            router.chat("llama3.2:3b")
            context.detach(token)
        elif scenario == "failure":
            try:
                router.chat_failing("llama3.2:3b")
            except MemoryError:
                pass
    sollol_otel.shutdown(timeout=5.0)
    print(json.dumps({"provider": type(trace.get_tracer_provider()).__name__}))
    """
)


def run_router(redis_client: redis.Redis, stream: str, *scenarios: str) -> tuple[list[dict[str, Any]], str]:
    """The events the router wrote, oldest first, and the tracer provider it was left with."""
    done = subprocess.run(
        [sys.executable, "-c", ROUTER, *scenarios], capture_output=True, text=True, check=True, timeout=60
    )
    events = []
    for _, fields in redis_client.xrange(stream):
        event = decode(fields)
        assert not isinstance(event, Skipped), event
        events.append(dict(event.fields))
    return events, json.loads(done.stdout.splitlines()[-1])["provider"]


def test_decisions_inside_a_request_share_its_trace_without_a_tracer_provider(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    events, _ = run_router(redis_client, keys[0], "requests")
    assert [e["event_type"] for e in events] == ["ROUTE_DECISION", "OLLAMA_NODE_SELECTED"] * 2
    first, second = events[:2], events[2:]
    for request in (first, second):
        assert len({e["trace_id"] for e in request}) == 1
        assert all(len(e["trace_id"]) == 32 and int(e["trace_id"], 16) for e in request)
        assert all(len(e["span_id"]) == 16 and int(e["span_id"], 16) for e in request)
    assert first[0]["trace_id"] != second[0]["trace_id"]


def test_a_decision_outside_any_request_starts_a_trace_of_its_own(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    events, _ = run_router(redis_client, keys[0], "alone", "alone")
    assert len(events) == 2
    assert all(int(e["trace_id"], 16) for e in events)
    assert events[0]["trace_id"] != events[1]["trace_id"]


def test_a_request_under_a_remote_parent_is_a_child_span_in_the_parents_trace(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    events, _ = run_router(redis_client, keys[0], "remote-parent")
    assert {e["trace_id"] for e in events} == {f"{0x1234:032x}"}
    assert all(e["span_id"] != f"{0x5678:016x}" for e in events)


def test_the_applications_tracer_provider_is_left_alone(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    _, provider = run_router(redis_client, keys[0], "requests")
    assert provider == "ProxyTracerProvider"


def test_a_failed_request_names_the_node_chosen_inside_it_in_the_same_trace(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    events, _ = run_router(redis_client, keys[0], "failure")
    selected, fallback = events
    assert selected["event_type"] == "OLLAMA_NODE_SELECTED"
    assert fallback["event_type"] == "FALLBACK_TRIGGERED"
    assert fallback["node_url"] == selected["node_url"] == "10.0.0.7:11434"
    assert (fallback["from_backend"], fallback["backend"]) == ("ollama", "rpc")
    assert fallback["reason"].startswith("MemoryError: Out of memory")
    assert fallback["trace_id"] == selected["trace_id"]
