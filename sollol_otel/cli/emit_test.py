"""`sollol-otel emit-test`: a realistic routing session, recorded through the real pipeline.

SOLLOL's test_routing_log.py, done properly: every event type SOLLOL records, with the
arguments HybridRouter and OllamaPool pass, written by `get_routing_logger().log_*()` and
flushed by `shutdown()`, then counted in the stream so a silent failure cannot pass for success.
"""

from __future__ import annotations

from typing import Any, TextIO

import redis

from sollol_otel.cli.exit_codes import EXIT_OK, EXIT_REDIS
from sollol_otel.display import safe_text
from sollol_otel.recording.logger import RoutingLogger
from sollol_otel.redis.client import CONNECTION_ERRORS, SyncClient, sync_client
from sollol_otel.redis.urls import redact_url
from sollol_otel.settings import Settings
from sollol_otel.wire import as_text

_READ_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, redis.ResponseError)


def record_session(logger: RoutingLogger) -> int:
    """One of each event type, as a small cluster produces them; the number recorded."""
    logger.log_route_decision(
        "llama3.2:3b", "ollama", "sufficient_resources (estimated 2.5GB)", parameter_count=3
    )
    logger.log_ollama_node_selected(
        "192.168.1.21:11434",
        "lowest_latency (15ms) + high_vram (8192MB free)",
        "llama3.2:3b",
        confidence=0.92,
    )
    logger.log_route_decision("llama3.2:3b", "ollama", "cached_decision", cached=True, parameter_count=3)
    logger.log_route_decision(
        "llama3.1:70b", "rpc", "insufficient_ollama_resources (requires 40.0GB)", parameter_count=70
    )
    logger.log_coordinator_start("llama3.1:70b", 3, coordinator_host="127.0.0.1", coordinator_port=18080)
    logger.log_rpc_backend_selected("192.168.1.31", 50052, "round_robin (3 backends)")
    logger.log_fallback("codellama:13b", "ollama", "rpc", "ollama_error: Out of memory")
    logger.log_model_switch("llama3.1:70b", "qwen2.5:72b", "rpc")
    logger.log_task_queued("task-0001", "llama3.2:3b", worker="worker-1")
    logger.log_task_start("task-0001", "llama3.2:3b", "worker-1")
    logger.log_task_complete("task-0001", "llama3.2:3b", "worker-1", duration=1.84)
    logger.log_worker_load("worker-1", 2, cpu_percent=37.5, memory_mb=2048.0)
    logger.log_coordinator_stop("llama3.1:70b")
    return 13


def _last_id(client: SyncClient, stream: str) -> str:
    """The newest id in the stream, or 0-0 when there is none yet."""
    newest: Any = client.xrevrange(stream, count=1)
    return as_text(newest[0][0]) if newest else "0-0"


def _added_since(client: SyncClient, stream: str, last_id: str, expected: int) -> int:
    """Entries written after `last_id` (up to `expected`); XRANGE works on Redis 6.2 and 7 alike,
    where `entries-added` is only Redis 7's."""
    added: Any = client.xrange(stream, min=f"({last_id}", count=expected)
    return len(added)


def run(settings: Settings, *, console: bool, err: TextIO) -> int:
    """Records the session into `settings`' Redis and checks it arrived; the exit code."""
    from sollol_otel import configure, shutdown

    where = f"{safe_text(settings.stream)} at {redact_url(settings.redis_url)}"
    client: SyncClient | None = None
    try:
        client = sync_client(settings.redis_url)
        before = _last_id(client, settings.stream)
        recorded = record_session(
            configure(redis_url=settings.redis_url, stream=settings.stream, enabled=True, console=console)
        )
        shutdown()
        arrived = _added_since(client, settings.stream, before, recorded)
    except _READ_ERRORS as exc:
        err.write(f"cannot reach {where}: {safe_text(exc)}\n")
        return EXIT_REDIS
    finally:
        if client is not None:
            client.close()
    if arrived < recorded:
        err.write(f"only {arrived} of {recorded} sample events reached {where}\n")
        return EXIT_REDIS
    err.write(f"recorded {recorded} sample events, one of each type, into {where}\n")
    return EXIT_OK
