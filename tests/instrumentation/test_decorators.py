"""The decorators on a router's own methods: spans, decision events, failures, and staying out of the way."""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass

import pytest
from opentelemetry.trace import StatusCode

import sollol_otel
from sollol_otel import EventType
from sollol_otel.diagnostics import Trouble
from sollol_otel.instrumentation import argument, engine, record_decision, routing_span

from .conftest import Pipeline


@dataclass
class Node:
    url: str
    why: str
    confidence: float


@dataclass
class Route:
    backend: str
    reason: str
    cached: bool = False


class Router:
    """A small router decorated the way users write one."""

    @routing_span(fallback_to="rpc")
    def chat(self, model: str, prompt: str = "") -> str:
        node = self.select_node(model)
        return f"{node.url}:{prompt}"

    @routing_span()
    async def chat_async(self, model: str) -> str:
        route = self.choose_backend(model)
        return route.backend

    @record_decision(
        EventType.OLLAMA_NODE_SELECTED,
        node=lambda n: n.url,
        reason=lambda n: n.why,
        confidence=lambda n: n.confidence,
    )
    def select_node(self, model: str) -> Node:
        return Node("10.0.0.7:11434", "lowest_latency (15ms)", 0.92)

    @record_decision(
        backend=lambda r: r.backend,
        reason=lambda r: r.reason,
        cached=lambda r: r.cached,
        parameter_count=argument("model", lambda m: int(m.rsplit(":", 1)[1].rstrip("b"))),
    )
    def choose_backend(self, model: str, cached: bool = False) -> Route:
        return Route("ollama", "sufficient_resources (estimated 2.5GB)", cached)

    @routing_span()
    def chat_that_fails(self, model: str) -> str:
        self.select_failing_node(model)
        return "unreachable"

    @record_decision(EventType.OLLAMA_NODE_SELECTED, backend="pool")
    def select_failing_node(self, model: str, pool: str = "ollama") -> Node:
        raise RuntimeError("No Ollama nodes available")

    @routing_span(fallback_to="rpc")
    def chat_failing_after_decision(self, model: str) -> str:
        self.choose_backend(model)
        raise TimeoutError("ollama timed out")


def test_a_sync_method_returns_its_value_from_inside_a_span_named_for_it(pipeline: Pipeline) -> None:
    assert Router().chat("llama3.2:3b", prompt="hi") == "10.0.0.7:11434:hi"
    span = pipeline.span("Router.chat")
    assert span.attributes is not None
    assert span.attributes["gen_ai.request.model"] == "llama3.2:3b"
    assert span.attributes["code.function.name"] == "Router.chat"
    assert span.attributes["sollol.backend"] == "ollama"


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: Router().chat("positional:1b"), "positional:1b"),
        (lambda: Router().chat(prompt="x", model="keyword:1b"), "keyword:1b"),
        (lambda: Router.chat(Router(), "via-class:1b"), "via-class:1b"),
    ],
)
def test_the_model_is_taken_from_the_call_however_it_is_passed(
    pipeline: Pipeline, call: object, expected: str
) -> None:
    call()  # type: ignore[operator]
    assert pipeline.span("Router.chat").attributes["gen_ai.request.model"] == expected  # type: ignore[index]


def test_an_async_method_runs_inside_its_span(pipeline: Pipeline) -> None:
    assert asyncio.run(Router().chat_async("llama3.2:3b")) == "ollama"
    span = pipeline.span("Router.chat_async")
    assert span.attributes is not None and span.attributes["gen_ai.request.model"] == "llama3.2:3b"
    assert span.end_time is not None and span.start_time is not None and span.end_time > span.start_time


def test_a_decision_becomes_one_event_with_values_from_the_return_value(pipeline: Pipeline) -> None:
    Router().select_node("llama3.2:3b")
    [event] = pipeline.events(1)
    assert event["event_type"] == "OLLAMA_NODE_SELECTED"
    assert event["model"] == "llama3.2:3b"
    assert event["backend"] == "ollama"
    assert event["node_url"] == "10.0.0.7:11434"
    assert event["reason"] == "lowest_latency (15ms)"
    assert event["confidence"] == 0.92


def test_a_decision_is_timed_in_milliseconds(pipeline: Pipeline) -> None:
    Router().select_node("llama3.2:3b")
    [event] = pipeline.events(1)
    assert isinstance(event["decision_ms"], float)
    assert 0 <= event["decision_ms"] < 1000


def test_a_decision_inside_a_request_is_in_the_requests_trace(pipeline: Pipeline) -> None:
    Router().chat("llama3.2:3b")
    [event] = pipeline.events(1)
    span = pipeline.span("Router.chat")
    assert event["trace_id"] == f"{span.context.trace_id:032x}"
    assert event["span_id"] == f"{span.context.span_id:016x}"
    assert [e.name for e in span.events] == ["sollol.routing.ollama_node_selected"]


def test_a_decision_without_a_model_of_its_own_takes_the_requests_model(pipeline: Pipeline) -> None:
    class Pool:
        @routing_span(model=argument("payload", lambda p: p["model"]))
        def request(self, payload: dict[str, str]) -> str:
            return self.pick()

        @record_decision(EventType.OLLAMA_NODE_SELECTED, node=lambda url: url, reason=lambda _: "round_robin")
        def pick(self) -> str:
            return "10.0.0.8:11434"

    Pool().request({"model": "qwen2.5:7b"})
    [event] = pipeline.events(1)
    assert (event["model"], event["node_url"]) == ("qwen2.5:7b", "10.0.0.8:11434")


def test_a_cached_route_decision_is_recorded_as_a_cache_hit(pipeline: Pipeline) -> None:
    Router().choose_backend("llama3.2:3b", cached=True)
    [event] = pipeline.events(1)
    assert (event["event_type"], event["cached"]) == ("CACHE_HIT", True)


def test_extra_keyword_extractors_become_event_keys(pipeline: Pipeline) -> None:
    Router().choose_backend("llama3.1:70b")
    [event] = pipeline.events(1)
    assert (event["event_type"], event["parameter_count"]) == ("ROUTE_DECISION", 70)


def test_an_exception_is_re_raised_unchanged_and_recorded_on_the_span(pipeline: Pipeline) -> None:
    with pytest.raises(RuntimeError) as raised:
        Router().chat_that_fails("llama3.2:3b")
    assert str(raised.value) == "No Ollama nodes available"
    assert raised.traceback[-1].name == "select_failing_node"
    span = pipeline.span("Router.chat_that_fails")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "builtins.RuntimeError"
    assert [e.name for e in span.events if e.name == "exception"] == ["exception"]


def test_an_exception_through_nested_decorated_calls_is_one_fallback_event(pipeline: Pipeline) -> None:
    with pytest.raises(RuntimeError):
        Router().chat_that_fails("llama3.2:3b")
    events = pipeline.events(1)
    assert [e["event_type"] for e in events] == ["FALLBACK_TRIGGERED"]
    assert events[0]["reason"] == "RuntimeError: No Ollama nodes available"
    assert events[0]["from_backend"] == "ollama"
    assert events[0]["model"] == "llama3.2:3b"


def test_a_failed_request_names_the_backend_decided_inside_it_and_where_it_falls_back(
    pipeline: Pipeline,
) -> None:
    with pytest.raises(TimeoutError):
        Router().chat_failing_after_decision("llama3.2:3b")
    decision, fallback = pipeline.events(2)
    assert decision["event_type"] == "ROUTE_DECISION"
    assert fallback["event_type"] == "FALLBACK_TRIGGERED"
    assert (fallback["from_backend"], fallback["backend"]) == ("ollama", "rpc")
    assert fallback["message"] == "⚠️  llama3.2:3b: ollama → rpc | TimeoutError: ollama timed out"


def test_an_async_exception_is_re_raised_unchanged(pipeline: Pipeline) -> None:
    error = ValueError("bad messages")

    @routing_span()
    async def route(model: str) -> None:
        raise error

    with pytest.raises(ValueError) as raised:
        asyncio.run(route("llama3.2:3b"))
    assert raised.value is error
    assert pipeline.events(1)[0]["reason"] == "ValueError: bad messages"


def test_with_recording_off_the_function_is_called_directly(pipeline: Pipeline) -> None:
    sollol_otel.configure(enabled=False)
    assert Router().chat("llama3.2:3b", prompt="hi") == "10.0.0.7:11434:hi"
    assert pipeline.spans() == []
    assert pipeline.events(timeout=0.2) == []


def test_an_extractor_that_raises_is_logged_once_and_the_result_is_unchanged(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "_trouble", Trouble(logging.getLogger(engine.__name__)))

    @record_decision(backend=lambda r: r["missing"], reason=lambda r: r["why"])
    def decide(model: str) -> dict[str, str]:
        return {"why": "only_choice"}

    with caplog.at_level(logging.DEBUG, logger="sollol_otel.instrumentation"):
        assert decide("llama3.2:3b") == {"why": "only_choice"}
        decide("llama3.2:3b")
    [event, _] = pipeline.events(2)
    assert (event["backend"], event["reason"]) == (None, "only_choice")
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


def test_signature_name_and_coroutine_nature_are_preserved() -> None:
    assert inspect.signature(Router.chat) == inspect.signature(Router.chat.__wrapped__)
    assert Router.chat.__name__ == "chat"
    assert inspect.iscoroutinefunction(Router.chat_async)
    assert not inspect.iscoroutinefunction(Router.chat)


def test_class_and_static_methods_read_their_arguments(pipeline: Pipeline) -> None:
    class Planner:
        @classmethod
        @routing_span()
        def plan(cls, model: str) -> str:
            return cls.__name__

        @staticmethod
        @routing_span()
        def route(model: str) -> str:
            return model

    assert Planner.plan("a:1b") == "Planner"
    assert Planner().route("b:1b") == "b:1b"
    models = {s.name.rsplit(".", 1)[1]: s.attributes["gen_ai.request.model"] for s in pipeline.spans()}  # type: ignore[index]
    assert models == {"plan": "a:1b", "route": "b:1b"}


def test_an_argument_the_function_does_not_have_is_refused_when_decorating() -> None:
    with pytest.raises(TypeError, match="no argument 'payload'"):

        @routing_span(model="payload")
        def route(model: str) -> None: ...


def test_a_decision_can_open_its_own_span_and_leave_logging_to_the_method(pipeline: Pipeline) -> None:
    @record_decision(EventType.OLLAMA_NODE_SELECTED, node=lambda url: url, span="select node", emit=False)
    def select(model: str) -> str:
        return "10.0.0.9:11434"

    select("llama3.2:3b")
    span = pipeline.span("select node")
    assert span.attributes is not None and span.attributes["sollol.node_url"] == "10.0.0.9:11434"
    assert pipeline.events(timeout=0.2) == []
