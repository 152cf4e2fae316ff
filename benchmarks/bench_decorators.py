"""What a decorated router method costs its caller, per call, against the same method undecorated.

    python benchmarks/bench_decorators.py [--calls 20000] [--redis-url redis://localhost:6379]
    python benchmarks/bench_decorators.py --no-tracer-provider   # an application that traces nothing

Recording goes through the real pipeline into Redis (a stream of its own, deleted after), with
an SDK TracerProvider and MeterProvider (no exporters: their cost is off the caller's thread);
with --no-tracer-provider, none is installed and decorated calls carry ids-only span contexts.
Each row times every call on its own and reports the caller's cost in µs; "overhead" subtracts
the undecorated method's median. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from opentelemetry import metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import sollol_otel
from sollol_otel import EventType
from sollol_otel.instrumentation import record_decision, routing_span


class Router:
    def select_plain(self, model: str) -> str:
        return "10.0.0.7:11434"

    @record_decision(EventType.OLLAMA_NODE_SELECTED, node=lambda url: url, reason=lambda _: "lowest_latency")
    def select(self, model: str) -> str:
        return "10.0.0.7:11434"

    @routing_span()
    def request(self, model: str) -> str:
        return "ok"

    @routing_span()
    def request_with_decision(self, model: str) -> str:
        return self.select(model)

    @routing_span()
    async def request_async(self, model: str) -> str:
        return "ok"

    async def request_async_plain(self, model: str) -> str:
        return "ok"


def settle() -> None:
    """Let the previous row's events reach Redis, so its delivery does not run during the next row."""
    sollol_otel.force_flush(30.0)
    gc.collect()


def timed(call: Callable[[], Any], calls: int) -> list[float]:
    """Per-call µs, after a warm-up of a tenth of the calls."""
    settle()
    for _ in range(calls // 10):
        call()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        call()
        samples.append((clock() - start) / 1000)
    return samples


def timed_async(call: Callable[[], Any], calls: int) -> list[float]:
    settle()

    async def run() -> list[float]:
        async def once() -> None:
            await call()

        for _ in range(calls // 10):
            await once()
        samples = []
        clock = time.perf_counter_ns
        for _ in range(calls):
            start = clock()
            await call()
            samples.append((clock() - start) / 1000)
        return samples

    return asyncio.run(run())


def percentile(samples: list[float], fraction: float) -> float:
    return statistics.quantiles(samples, n=100)[int(fraction * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--redis-url", default=os.environ.get("SOLLOL_REDIS_URL", "redis://localhost:6379"))
    parser.add_argument("--no-tracer-provider", action="store_true", help="leave the API's no-op provider")
    options = parser.parse_args()

    if not options.no_tracer_provider:
        trace.set_tracer_provider(TracerProvider())
    metrics.set_meter_provider(MeterProvider())
    stream = f"bench:decorators:{uuid.uuid4().hex[:8]}"
    logs = LoggerProvider()
    router = Router()
    rows: list[tuple[str, list[float]]] = []
    try:
        sollol_otel.configure(
            redis_url=options.redis_url, stream=stream, channel=stream, logger_provider=logs
        )
        logger = sollol_otel.get_routing_logger()
        rows.append(("undecorated method", timed(lambda: router.select_plain("llama3.2:3b"), options.calls)))
        rows.append((
            "logger.log_ollama_node_selected() by hand",
            timed(lambda: logger.log_ollama_node_selected("10.0.0.7:11434", "lowest_latency", "llama3.2:3b"),
                  options.calls),
        ))  # fmt: skip
        rows.append(
            ("@record_decision (event + metrics)", timed(lambda: router.select("llama3.2:3b"), options.calls))
        )
        tracer = trace.get_tracer("bench")

        def request_by_hand() -> str:
            with tracer.start_as_current_span(
                "Router.request", attributes={"gen_ai.request.model": "llama3.2:3b"}
            ):
                return "ok"

        rows.append(("tracer.start_as_current_span() by hand", timed(request_by_hand, options.calls)))
        rows.append(
            ("@routing_span (span, no decision)", timed(lambda: router.request("llama3.2:3b"), options.calls))
        )
        rows.append((
            "@routing_span around a @record_decision",
            timed(lambda: router.request_with_decision("llama3.2:3b"), options.calls),
        ))  # fmt: skip
        rows.append((
            "async undecorated method",
            timed_async(lambda: router.request_async_plain("llama3.2:3b"), options.calls),
        ))  # fmt: skip
        rows.append((
            "async @routing_span",
            timed_async(lambda: router.request_async("llama3.2:3b"), options.calls),
        ))  # fmt: skip
        sollol_otel.configure(redis_url=options.redis_url, stream=stream, channel=stream, enabled=False)
        rows.append((
            "@routing_span around a @record_decision, recording off",
            timed(lambda: router.request_with_decision("llama3.2:3b"), options.calls),
        ))  # fmt: skip
    finally:
        sollol_otel.shutdown()
        client = redis.Redis.from_url(options.redis_url)
        client.delete(stream)
        client.close()

    baseline = statistics.median(rows[0][1])
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    tracing = "no TracerProvider" if options.no_tracer_provider else "SDK TracerProvider"
    print(
        f"{os.cpu_count()} CPUs ({platform.machine()}), load average {load}, "
        f"Python {platform.python_version()}, {options.calls} calls per row, {tracing}\n"
    )
    print("| what the caller runs | p50 µs | p99 µs | overhead p50 µs |")
    print("|---|---|---|---|")
    for name, samples in rows:
        p50 = statistics.median(samples)
        print(f"| {name} | {p50:.2f} | {percentile(samples, 0.99):.2f} | {p50 - baseline:.2f} |")


if __name__ == "__main__":
    main()
