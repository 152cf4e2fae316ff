"""Wire compatibility with SOLLOL 0.9.66, both ways, using its own modules from PyPI."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any

import pytest
import redis
import sollol_reference

import sollol_otel
from sollol_otel import RoutingLogger

from .conftest import raw_stream, read_stream

Recording = Callable[..., RoutingLogger]

pytestmark = pytest.mark.skipif(not sollol_reference.INSTALLED, reason=sollol_reference.MISSING_REASON)
sollol_module = sollol_reference.load


#: The same calls for both loggers; every type that carries a model and a backend.
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    (
        "log_route_decision",
        ("llama3.2:3b", "ollama", "sufficient_resources (estimated 2.5GB)"),
        {"parameter_count": 3},
    ),
    ("log_route_decision", ("llama3.2:3b", "ollama", "cache"), {"cached": True}),
    ("log_fallback", ("codellama:13b", "ollama", "rpc", "ollama_error: Out of memory"), {}),
    (
        "log_coordinator_start",
        ("llama3.1:70b", 3),
        {"coordinator_host": "127.0.0.1", "coordinator_port": 18080},
    ),
    ("log_coordinator_stop", ("llama3.1:70b",), {}),
    (
        "log_ollama_node_selected",
        ("http://192.168.1.21:11434", "lowest_latency", "llama3.2:3b"),
        {"confidence": 0.92},
    ),
    ("log_model_switch", ("llama3.1:8b", "llama3.1:70b", "llamacpp"), {}),
]
#: Types whose model or backend is null, which SOLLOL's own viewer cannot print.
NULL_MODEL_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("log_rpc_backend_selected", ("10.0.0.5", 50052, "least_loaded"), {}),
    ("log_worker_load", ("worker-1", 2), {"cpu_percent": 35.0, "memory_mb": 2048.0}),
    ("log_task_queued", ("t1", "llama3.2:3b"), {}),
    ("log_task_complete", ("t1", "llama3.2:3b", "worker-1", 1.25), {"success": False}),
]


def call_all(logger: Any, calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
    for method, args, kwargs in calls:
        getattr(logger, method)(*args, **kwargs)


def sollol_logger(redis_url: str, stream: str, channel: str) -> Any:
    module = sollol_module("routing_logger")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return module.RoutingEventLogger(redis_client=client, channel=channel, stream_key=stream)


def test_we_write_every_key_sollol_writes_with_the_same_value(
    recording: Recording, keys: tuple[str, str], redis_url: str, redis_client: redis.Redis
) -> None:
    ours_stream, channel = keys
    theirs_stream = ours_stream + ":sollol"
    calls = CALLS + NULL_MODEL_CALLS
    call_all(sollol_logger(redis_url, theirs_stream, channel), calls)
    call_all(recording(), calls)
    sollol_otel.shutdown()
    try:
        theirs, ours = raw_stream(redis_client, theirs_stream), raw_stream(redis_client, ours_stream)
    finally:
        redis_client.delete(theirs_stream)
    assert len(theirs) == len(ours) == len(calls)
    for their_event, our_event in zip(theirs, ours, strict=True):
        missing = set(their_event) - set(our_event)
        assert not missing, (their_event["event_type"], missing)
        for key in set(their_event) - {"timestamp", "instance_id", "start_time"}:
            assert our_event[key] == their_event[key], (their_event["event_type"], key)


def test_sollols_viewer_shows_our_events(recording: Recording, keys: tuple[str, str], redis_url: str) -> None:
    stream, _ = keys
    call_all(recording(), CALLS)
    sollol_otel.shutdown()
    viewer_module = sollol_module("routing_viewer")
    output = io.StringIO()
    with redirect_stdout(output):
        viewer = viewer_module.RoutingViewer(redis_url=redis_url)
        viewer.stream_key = stream
        viewer.show_history(100)
    text = output.getvalue()
    assert "Error" not in text
    assert f"Displayed {len(CALLS)} historical events" in text
    for event_type in ("ROUTE_DECISION", "CACHE_HIT", "FALLBACK_TRIGGERED", "OLLAMA_NODE_SELECTED"):
        assert event_type in text
    assert "sufficient_resources (estimated 2.5GB)" in text and "node: http://192.168.1.21:11434" in text


def test_we_read_everything_sollols_logger_writes(
    keys: tuple[str, str], redis_url: str, redis_client: redis.Redis
) -> None:
    stream, channel = keys
    call_all(sollol_logger(redis_url, stream, channel), CALLS + NULL_MODEL_CALLS)
    events = read_stream(redis_client, stream)
    assert [e.event_type for e in events] == [
        "ROUTE_DECISION", "CACHE_HIT", "FALLBACK_TRIGGERED", "COORDINATOR_START", "COORDINATOR_STOP",
        "OLLAMA_NODE_SELECTED", "MODEL_SWITCH", "RPC_BACKEND_SELECTED", "WORKER_LOAD", "TASK_QUEUED",
        "TASK_COMPLETE",
    ]  # fmt: skip
    assert all(e.time is not None for e in events)
    assert events[0].message == "🎯 llama3.2:3b → ollama | sufficient_resources (estimated 2.5GB)"
    assert events[7].model is None and events[7].backend == "rpc"
