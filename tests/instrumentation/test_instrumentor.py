"""SollolInstrumentor with the real sollol==0.9.66: OllamaPool and HybridRouter on fake Ollama nodes."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wrapt

from sollol_otel.instrumentation import SollolInstrumentor
from sollol_otel.instrumentation.instrumentor import LOG_METHODS

from .conftest import Pipeline
from .fake_ollama import FakeOllama

pytestmark = pytest.mark.sollol
pool_module = pytest.importorskip(
    "sollol.pool", reason="sollol 0.9.66 is not importable: run scripts/install_sollol.sh"
)
import sollol.hybrid_router  # noqa: E402 (after the skip above)
import sollol.routing_logger  # noqa: E402
from sollol.routing_strategy import RoutingStrategy  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]
PoolFactory = Callable[..., Any]


@pytest.fixture
def nodes() -> Iterator[list[FakeOllama]]:
    servers = [FakeOllama(), FakeOllama()]
    yield servers
    for server in servers:
        server.close()


@pytest.fixture
def make_pool(nodes: list[FakeOllama]) -> Iterator[PoolFactory]:
    """`make_pool(strategy, nodes=...)`: an OllamaPool on the fake nodes, its threads stopped after."""
    pools = []

    def make(
        strategy: RoutingStrategy = RoutingStrategy.ROUND_ROBIN, on: list[FakeOllama] | None = None
    ) -> Any:
        pool = pool_module.OllamaPool(
            nodes=[n.node for n in (on or nodes)],
            routing_strategy=strategy,
            enable_dask=False,
            enable_gpu_redis=False,
            register_with_dashboard=False,
            enable_cache=False,
        )
        pools.append(pool)
        return pool

    yield make
    for pool in pools:  # stop() would wait out the pool's 30 s polling sleeps; its threads are daemons
        pool._vram_refresh_enabled = pool._health_check_enabled = False
        pool.session.close()


@pytest.fixture
def instrumented(pipeline: Pipeline) -> Iterator[Pipeline]:
    SollolInstrumentor().instrument()
    yield pipeline
    SollolInstrumentor().uninstrument()


def test_pool_node_selections_reach_redis_as_sollol_writes_them(
    instrumented: Pipeline, make_pool: PoolFactory, nodes: list[FakeOllama]
) -> None:
    pool = make_pool()
    pool.chat("llama3.2:3b", MESSAGES)
    pool.chat("llama3.2:3b", MESSAGES)
    events = instrumented.events(2)
    assert [e["event_type"] for e in events] == ["OLLAMA_NODE_SELECTED"] * 2
    assert {e["node_url"] for e in events} == {n.address for n in nodes}
    assert events[0]["model"] == "llama3.2:3b"
    assert events[0]["backend"] == "ollama"
    assert events[0]["reason"] == "Strategy: round_robin"
    assert (events[0]["priority"], events[0]["confidence"]) == (5, 0)


def test_intelligent_routing_reasons_and_confidence_reach_redis(
    instrumented: Pipeline, make_pool: PoolFactory
) -> None:
    make_pool(RoutingStrategy.INTELLIGENT).chat("llama3.2:3b", MESSAGES)
    [event] = instrumented.events(1)
    assert event["event_type"] == "OLLAMA_NODE_SELECTED"
    assert event["reason"].startswith("Task: generation")
    assert "confidence" in event


def test_node_selection_is_a_timed_span_inside_the_request_span(
    instrumented: Pipeline, make_pool: PoolFactory
) -> None:
    make_pool().chat("llama3.2:3b", MESSAGES)
    [event] = instrumented.events(1)
    request, selection = instrumented.span("OllamaPool.chat"), instrumented.span("OllamaPool.select_node")
    assert selection.parent is not None and selection.parent.span_id == request.context.span_id
    assert event["trace_id"] == f"{request.context.trace_id:032x}"
    assert event["span_id"] == f"{selection.context.span_id:016x}"
    assert selection.attributes is not None
    assert selection.attributes["sollol.node_url"] == event["node_url"]
    assert request.attributes is not None and request.attributes["gen_ai.request.model"] == "llama3.2:3b"


def test_async_requests_are_traced(instrumented: Pipeline, make_pool: PoolFactory) -> None:
    asyncio.run(make_pool().chat_async("llama3.2:3b", MESSAGES))
    request, selection = (
        instrumented.span("OllamaPool.chat_async"),
        instrumented.span("OllamaPool.select_node"),
    )
    assert selection.parent is not None and selection.parent.span_id == request.context.span_id


def test_a_pool_created_before_instrumenting_is_rerouted(
    pipeline: Pipeline, make_pool: PoolFactory, nodes: list[FakeOllama]
) -> None:
    pool = make_pool()
    assert isinstance(pool.routing_logger, sollol.routing_logger.RoutingEventLogger)
    SollolInstrumentor().instrument()
    try:
        pool.chat("llama3.2:3b", MESSAGES)
    finally:
        SollolInstrumentor().uninstrument()
    [event] = pipeline.events(1)
    assert event["node_url"] in {n.address for n in nodes}
    assert event["trace_id"] == f"{pipeline.span('OllamaPool.chat').context.trace_id:032x}"


def test_a_pool_whose_nodes_all_fail_records_one_failure(
    instrumented: Pipeline, make_pool: PoolFactory
) -> None:
    broken = [FakeOllama(failing=True)]
    try:
        with pytest.raises(RuntimeError, match="All Ollama nodes failed"):
            make_pool(on=broken).chat("llama3.2:3b", MESSAGES)
    finally:
        broken[0].close()
    selected, failed = instrumented.events(2)
    assert selected["event_type"] == "OLLAMA_NODE_SELECTED"
    assert failed["event_type"] == "FALLBACK_TRIGGERED"
    assert (failed["from_backend"], failed["backend"]) == ("ollama", None)
    assert failed["reason"].startswith("RuntimeError: All Ollama nodes failed")
    assert instrumented.span("OllamaPool.chat").status.is_ok is False


def test_hybrid_router_requests_are_traced_through_to_the_node(
    instrumented: Pipeline, make_pool: PoolFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOLLOL_DASHBOARD", "false")
    router = sollol.hybrid_router.HybridRouter(
        ollama_pool=make_pool(), enable_distributed=False, auto_discover_rpc=False
    )
    asyncio.run(router.route_request("llama3.2:3b", MESSAGES))
    decision, selected = instrumented.events(2)
    assert (decision["event_type"], decision["backend"]) == ("ROUTE_DECISION", "ollama")
    assert decision["reason"].startswith("sufficient_resources")
    assert selected["event_type"] == "OLLAMA_NODE_SELECTED"
    names = ["HybridRouter.route_request", "HybridRouter.route_to_ollama", "OllamaPool.chat_async"]
    spans = [instrumented.span(name) for name in names]
    for parent, child in itertools.pairwise(spans):
        assert child.parent is not None and child.parent.span_id == parent.context.span_id
    assert decision["trace_id"] == selected["trace_id"] == f"{spans[0].context.trace_id:032x}"


def test_sollols_enable_console_routing_log_turns_on_ours(instrumented: Pipeline) -> None:
    import sollol_otel

    sollol.routing_logger.enable_console_routing_log()
    assert sollol_otel.get_routing_logger().console_output is True


def test_uninstrument_restores_sollols_logger_and_methods() -> None:
    originals = (
        sollol.routing_logger.get_routing_logger,
        sollol.routing_logger.enable_console_routing_log,
        sollol.routing_logger._routing_logger,
    )
    SollolInstrumentor().instrument()
    assert pool_module.get_routing_logger is not originals[0]
    SollolInstrumentor().uninstrument()
    assert (
        sollol.routing_logger.get_routing_logger,
        sollol.routing_logger.enable_console_routing_log,
        sollol.routing_logger._routing_logger,
    ) == originals
    assert pool_module.get_routing_logger is originals[0]
    assert sollol.hybrid_router.get_routing_logger is originals[0]
    for method in ("chat", "chat_async", "_select_node"):
        assert not isinstance(vars(pool_module.OllamaPool)[method], wrapt.ObjectProxy)
    assert not isinstance(vars(sollol.hybrid_router.HybridRouter)["route_request"], wrapt.ObjectProxy)
    for method in LOG_METHODS:
        assert not isinstance(vars(sollol.routing_logger.RoutingEventLogger)[method], wrapt.ObjectProxy)


def test_a_pool_created_while_instrumented_goes_back_to_sollols_logger_after(
    pipeline: Pipeline, make_pool: PoolFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sollols_own = sollol.routing_logger.RoutingEventLogger(redis_client=None)
    monkeypatch.setattr(sollol.routing_logger, "_routing_logger", sollols_own)
    SollolInstrumentor().instrument()
    pool = make_pool()
    SollolInstrumentor().uninstrument()
    assert pool.routing_logger.instance_id == sollols_own.instance_id
    pool.chat("llama3.2:3b", MESSAGES)
    assert pipeline.events(timeout=0.2) == []


def test_opentelemetry_instrument_picks_the_instrumentor_up(
    keys: tuple[str, str], pipeline: Pipeline, nodes: list[FakeOllama], tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(f"""
        import sollol_otel
        from sollol.pool import OllamaPool
        pool = OllamaPool(nodes=[{nodes[0].node!r}], enable_dask=False, enable_gpu_redis=False,
                          register_with_dashboard=False, enable_cache=False)
        pool.chat("llama3.2:3b", [{{"role": "user", "content": "hi"}}])
        sollol_otel.shutdown()
        """)
    )
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "",
    }
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    done = subprocess.run(
        [str(instrument), sys.executable, str(script)], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    [event] = pipeline.events(1)
    assert (event["event_type"], event["node_url"]) == ("OLLAMA_NODE_SELECTED", nodes[0].address)
    assert event["pid"] != os.getpid()  # written by the instrumented child, into this test's stream


INSTRUMENTED_POOL_WITHOUT_TRACING = textwrap.dedent(
    """
    import json, sys
    import sollol_otel
    from sollol_otel.instrumentation import SollolInstrumentor
    sollol_otel.configure()
    SollolInstrumentor().instrument()
    import sollol.pool
    from sollol.routing_strategy import RoutingStrategy
    pool = sollol.pool.OllamaPool(
        nodes=json.loads(sys.argv[1]), routing_strategy=RoutingStrategy.ROUND_ROBIN, enable_dask=False,
        enable_gpu_redis=False, register_with_dashboard=False, enable_cache=False,
    )
    pool._vram_refresh_enabled = pool._health_check_enabled = False
    for _ in range(2):
        pool.chat("llama3.2:3b", [{"role": "user", "content": "hello"}])
    sollol_otel.shutdown(timeout=5.0)
    """
)


def test_instrumented_requests_carry_trace_ids_without_a_tracer_provider(
    pipeline: Pipeline, nodes: list[FakeOllama]
) -> None:
    """In a fresh interpreter: this session installs an SDK TracerProvider, the application here has none."""
    subprocess.run(
        [sys.executable, "-c", INSTRUMENTED_POOL_WITHOUT_TRACING, json.dumps([n.node for n in nodes])],
        check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    events = pipeline.events(2)
    assert [e["event_type"] for e in events] == ["OLLAMA_NODE_SELECTED"] * 2
    assert all(len(e["trace_id"]) == 32 and int(e["trace_id"], 16) for e in events)
    assert events[0]["trace_id"] != events[1]["trace_id"]  # one trace per request
