"""Recording benchmarks: caller's cost, decision → stream latency, throughput, Redis's ceiling.

    .venv/bin/python benchmarks/bench_recording.py [--quick]

Ours and SOLLOL 0.9.66's RoutingEventLogger (pip install --no-deps sollol==0.9.66) run in the
same process against the same Redis, with Redis up, refusing connections, and hung (SIGSTOP:
the kernel accepts TCP, nothing answers). Prints markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import multiprocessing
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import sollol_reference
from redis_servers import RedisServer, free_port

import sollol_otel
from sollol_otel.recording.exporters.redis_bridge import RedisBridgeExporter
from sollol_otel.redis.writer import RedisWriter
from sollol_otel.settings import Settings
from sollol_otel.wire import decode

MODEL, BACKEND, REASON = "llama3.2:3b", "ollama", "sufficient_resources (estimated 2.5GB)"


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    return ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99)] / 1000


def time_calls(call: Callable[[], None], count: int, tracer: TracerProvider | None = None) -> list[int]:
    """Per-call nanoseconds; with a tracer, each call runs inside a recording span (100 calls per span)."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    for start in range(0, count, 100):
        span_cm = (
            tracer.get_tracer("bench").start_as_current_span("route") if tracer else contextlib.nullcontext()
        )
        with span_cm:
            for _ in range(min(100, count - start)):
                began = clock()
                call()
                samples.append(clock() - began)
    return samples


def keys() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"bench:{suffix}:stream", f"bench:{suffix}:channel"


def ours(url: str, stream: str, channel: str) -> Callable[[], None]:
    logger = sollol_otel.configure(redis_url=url, stream=stream, channel=channel)
    return lambda: logger.log_route_decision(MODEL, BACKEND, REASON, parameter_count=3)


def theirs(url: str, stream: str, channel: str) -> Callable[[], None]:
    module = sollol_reference.load("routing_logger")
    client = redis.Redis.from_url(url, decode_responses=True)
    logger = module.RoutingEventLogger(redis_client=client, channel=channel, stream_key=stream)
    return lambda: logger.log_route_decision(MODEL, BACKEND, REASON, parameter_count=3)


def _sollol_hung_worker(url: str, stream: str, channel: str, ready: Any, go: Any, done: Any) -> None:
    """SOLLOL's logger made while Redis answers (as in a running router), then called once it hangs.

    `done` collects each returned call's seconds.
    """
    call = theirs(url, stream, channel)
    ready.set()
    go.wait()
    for _ in range(3):
        started = time.perf_counter()
        call()
        done.append(time.perf_counter() - started)


def sollol_against_hung_redis(server: RedisServer, stream: str, channel: str) -> str:
    """SOLLOL's logger made while Redis answers, then called after it hangs: seconds per call."""
    manager = multiprocessing.Manager()
    ready, go, done = multiprocessing.Event(), multiprocessing.Event(), manager.list()
    worker = multiprocessing.Process(
        target=_sollol_hung_worker, args=(server.url, stream, channel, ready, go, done)
    )
    worker.start()
    ready.wait(10)
    server.hang()
    go.set()
    worker.join(15)
    worker.kill()
    returned = list(done)
    manager.shutdown()
    seconds = ", ".join(f"{value:.1f} s" for value in returned)
    return f"| hung | SOLLOL 0.9.66 | 3 | {len(returned)} of 3 calls returned within 15 s ({seconds}) | |"


def caller_cost(count: int) -> list[str]:
    rows = ["| Redis | logger | calls | p50 µs | p99 µs |", "|---|---|---|---|---|"]
    tracer = TracerProvider()
    logging.getLogger().addHandler(logging.NullHandler())  # SOLLOL logs a traceback per failed event
    server = RedisServer().start()
    try:
        for state in ("up", "refusing", "hung"):
            stream, channel = keys()
            call_ours = ours(server.url, stream, channel)
            if state == "hung":
                theirs_row = sollol_against_hung_redis(server, stream, channel)
            else:
                call_theirs = theirs(server.url, stream, channel)
                if state == "refusing":
                    server.stop()
                their_count = count if state == "up" else max(200, count // 10)
                p50, p99 = percentiles(time_calls(call_theirs, their_count))
                theirs_row = f"| {state} | SOLLOL 0.9.66 | {their_count} | {p50:.1f} | {p99:.1f} |"
            p50, p99 = percentiles(time_calls(call_ours, count, tracer))
            rows.append(
                f"| {state} | sollol-otel (log event + span event) | {count} | {p50:.1f} | {p99:.1f} |"
            )
            rows.append(theirs_row)
            sollol_otel.shutdown(timeout=0.5)
            if state == "hung":
                server.resume()
            server.restart()
        for endpoint in ("off", "on"):  # node selections feed one more counter (and the endpoint's)
            if endpoint == "on":
                os.environ["SOLLOL_METRICS_PORT"] = str(free_port())
            stream, channel = keys()
            node_logger = sollol_otel.configure(redis_url=server.url, stream=stream, channel=channel)
            p50, p99 = percentiles(
                time_calls(
                    functools.partial(node_logger.log_ollama_node_selected, "10.0.0.7:11434", REASON, MODEL),
                    count,
                    tracer,
                )
            )
            label = f"sollol-otel, node selected, metrics endpoint {endpoint}"
            rows.append(f"| up | {label} | {count} | {p50:.1f} | {p99:.1f} |")
            sollol_otel.shutdown(timeout=0.5)
        os.environ.pop("SOLLOL_METRICS_PORT", None)
        logger = sollol_otel.configure(enabled=False)
        p50, p99 = percentiles(
            time_calls(lambda: logger.log_route_decision(MODEL, BACKEND, REASON), count, tracer)
        )
        rows.append(f"| any | sollol-otel, SOLLOL_ROUTING_LOG=false | {count} | {p50:.2f} | {p99:.2f} |")
        sollol_otel.shutdown()
    finally:
        server.close()
        tracer.shutdown()
    return rows


def _read_latencies(url: str, stream: str, expected: int, results: Any) -> None:
    """Runs in its own process: XREAD BLOCK from the start, receipt time minus the event's timestamp."""
    client = redis.Redis.from_url(url)
    last, seen, latencies = "0-0", 0, []
    deadline = time.monotonic() + 60
    while seen < expected and time.monotonic() < deadline:
        response = client.xread({stream: last}, count=1000, block=1000)
        now = datetime.now(timezone.utc)
        for _, entries in response or []:
            for entry_id, fields in entries:
                last = entry_id
                event = decode(fields)
                if not isinstance(event, sollol_otel.RoutingEvent) or event.time is None:
                    continue
                latencies.append((now - event.time).total_seconds() * 1e6)
                seen += 1
    results.extend(latencies)


@contextlib.contextmanager
def reader(url: str, stream: str, expected: int) -> Iterator[list[float]]:
    manager = multiprocessing.Manager()
    results = manager.list()
    process = multiprocessing.Process(target=_read_latencies, args=(url, stream, expected, results))
    process.start()
    time.sleep(0.5)
    collected: list[float] = []
    try:
        yield collected
    finally:
        process.join(70)
        collected.extend(results)
        manager.shutdown()


def paced(call: Callable[[], None], rate: int, seconds: float) -> int:
    count = int(rate * seconds)
    interval = 1 / rate
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        call()
    return count


def latency(url: str, seconds: float) -> list[str]:
    rows = ["| processor | events/s | events | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for rate in (100, 1_000, 5_000):
        stream, channel = keys()
        call = ours(url, stream, channel)
        with reader(url, stream, int(rate * seconds)) as latencies:
            paced(call, rate, seconds)
            sollol_otel.force_flush(10)
        rows.append(_latency_row("realtime (ours)", rate, latencies))
        sollol_otel.shutdown()
        _cleanup(url, stream)
    # The same exporter behind the SDK's BatchLogRecordProcessor (defaults), side by side.
    stream, channel = keys()
    settings = Settings(redis_url=url, stream=stream, channel=channel)
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(RedisBridgeExporter(RedisWriter(settings), dict))
    )
    logger = sollol_otel.RoutingLogger(provider.get_logger("bench"))
    with reader(url, stream, int(1_000 * seconds)) as latencies:
        paced(lambda: logger.log_route_decision(MODEL, BACKEND, REASON), 1_000, seconds)
        logger.flush(10)
        provider.force_flush()
    rows.append(_latency_row("SDK BatchLogRecordProcessor", 1_000, latencies))
    logger.close(5, then=lambda decision: None)  # nothing is recorded after
    provider.shutdown()
    _cleanup(url, stream)
    return rows


def _latency_row(name: str, rate: int, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    if not ordered:
        return f"| {name} | {rate} | 0 | | | |"
    p50, p99 = ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99)] / 1000
    return f"| {name} | {rate} | {len(ordered)} | {p50:.2f} | {p99:.2f} | {ordered[-1] / 1000:.2f} |"


def _cleanup(url: str, stream: str) -> None:
    client = redis.Redis.from_url(url)
    client.delete(stream)
    client.close()


def throughput(url: str, count: int) -> list[str]:
    rows = ["| path | events | seconds | events/s | dropped |", "|---|---|---|---|---|"]
    stream, channel = keys()
    settings = Settings(redis_url=url, stream=stream, channel=channel, backlog=count)
    event = {
        "timestamp": "2026-11-27T12:03:45.123456", "instance_id": "host_1_abcd1234", "hostname": "host",
        "pid": 1, "event_type": "ROUTE_DECISION", "model": MODEL, "backend": BACKEND, "reason": REASON,
        "cached": False, "parameter_count": 3, "message": f"🎯 {MODEL} → {BACKEND} | {REASON}",
        "service": "sollol", "schema_version": 1,
    }  # fmt: skip
    for label, with_ids, retention in (
        ("events with ids, as the bridge exporter gives them", True, None),
        ("events without ids, as foreign OTLP senders give them", False, None),
        ("events with ids, 24 h retention (XTRIM MINID by Redis's clock)", True, 86_400.0),
    ):
        events = [{**event, "event_id": uuid.uuid4().hex} if with_ids else event for _ in range(1_000)]
        writer = RedisWriter(replace(settings, stream_retention=retention))
        started = time.perf_counter()
        for _ in range(0, count, 1_000):
            writer.submit(events)
        writer.flush(120)
        elapsed = time.perf_counter() - started
        stats = writer.stats()
        writer.close()
        rows.append(
            f"| Redis writer, {label} | {stats.exported} | {elapsed:.2f} | "
            f"{stats.exported / elapsed:,.0f} | {stats.dropped} |"
        )
        _cleanup(url, stream)
    stream, channel = keys()
    call = ours(url, stream, channel)
    started = time.perf_counter()
    for _ in range(0, count, 5_000):  # bursts the queues absorb, then wait: sustained, not overload
        for _ in range(5_000):
            call()
        sollol_otel.force_flush(120)
    elapsed = time.perf_counter() - started
    stats = sollol_otel.bridge_stats()
    rows.append(
        f"| end to end: log_route_decision → OTel SDK → Redis | {stats.exported} | {elapsed:.2f} | "
        f"{stats.exported / elapsed:,.0f} | {stats.dropped} |"
    )
    sollol_otel.shutdown()
    _cleanup(url, stream)
    return rows


def redis_ceiling(url: str) -> list[str]:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return ["redis-benchmark not installed: ceiling not measured"]
    port = redis.Redis.from_url(url).connection_pool.connection_kwargs["port"]
    payload = '{"event_type":"ROUTE_DECISION","model":"llama3.2:3b","backend":"ollama","reason":"x"}'
    output = subprocess.run(
        [binary, "-p", str(port), "-n", "300000", "-P", "64", "-q",
         "XADD", "bench:ceiling", "MAXLEN", "~", "10000", "*", "event", payload],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    redis.Redis.from_url(url).delete("bench:ceiling")
    found = re.search(r"([\d.]+) requests per second", output)
    rate = f"{float(found.group(1)):,.0f} XADD/s" if found else "not parsed: " + output.strip()[-200:]
    return [f"redis-benchmark, pipelined XADD MAXLEN ~ 10000 (-P 64): {rate}"]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    server = redis.Redis().info("server")["redis_version"] if redis.Redis().ping() else "?"
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, Redis {server}"


def hostile_metadata(url: str, calls: int) -> list[str]:
    """The caller's cost when metadata is huge: ours bounds it first, SOLLOL serializes all of it."""
    rows = ["| metadata | logger | calls | p50 µs | p99 µs |", "|---|---|---|---|---|"]
    cases: list[tuple[str, dict[str, Any]]] = [
        ("a value: dict of 1,000,000 keys", {"huge": {f"k{i}": i for i in range(1_000_000)}}),
        ("10,000 keyword arguments", {f"key_{i}": i for i in range(10_000)}),
    ]
    tracer = TracerProvider()
    their_calls = max(3, calls // 10)
    for label, metadata in cases:
        stream, channel = keys()
        ours = sollol_otel.configure(redis_url=url, stream=stream, channel=channel)
        call = functools.partial(ours.log_route_decision, MODEL, BACKEND, REASON, **metadata)
        p50, p99 = percentiles(time_calls(call, calls, tracer))
        rows.append(f"| {label} | sollol-otel (log event + span event) | {calls} | {p50:.1f} | {p99:.1f} |")
        sollol_otel.shutdown()
        client = redis.Redis.from_url(url, decode_responses=True)
        theirs = sollol_reference.load("routing_logger").RoutingEventLogger(
            redis_client=client, channel=channel, stream_key=stream
        )
        call = functools.partial(theirs.log_route_decision, MODEL, BACKEND, REASON, **metadata)
        p50, p99 = percentiles(time_calls(call, their_calls))
        rows.append(f"| {label} | SOLLOL 0.9.66 | {their_calls} | {p50:.1f} | {p99:.1f} |")
        client.close()
        _cleanup(url, stream)
    tracer.shutdown()
    return rows


_SILENT_OTLP_SCRIPT = """
import sys, time
from opentelemetry import trace
import sollol_otel
logger = sollol_otel.get_routing_logger()
for _ in range(100):
    with trace.get_tracer("bench").start_as_current_span("request"):
        logger.log_route_decision("m", "ollama", "r")
started = time.monotonic()
if sys.argv[1] == "shutdown":
    sollol_otel.shutdown(float(sys.argv[2]))
    print(f"{time.monotonic() - started:.2f}", flush=True)
else:
    print(f"{started}", flush=True)
"""


def silent_otlp_shutdown(url: str) -> list[str]:
    """Shutdown, and interpreter exit, with the OTLP endpoint a socket that never answers."""
    rows = ["| what | timeout s | seconds |", "|---|---|---|"]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        stream, _ = keys()
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{listener.getsockname()[1]}",
            "SOLLOL_REDIS_URL": url,
            "SOLLOL_ROUTING_STREAM": stream,
        }
        for timeout in (1.0, 2.0):
            ran = subprocess.run(
                [sys.executable, "-c", _SILENT_OTLP_SCRIPT, "shutdown", str(timeout)],
                env=env, capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
            rows.append(f"| shutdown(timeout) | {timeout:.1f} | {ran.stdout.strip()} |")
        process = subprocess.Popen(
            [sys.executable, "-c", _SILENT_OTLP_SCRIPT, "exit", "0"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert process.stdout is not None
        started = float(process.stdout.readline())
        process.wait(120)
        rows.append(
            f"| interpreter exit, no shutdown() call | 2.0 (default) | {time.monotonic() - started:.2f} |"
        )
        _cleanup(url, stream)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and shorter runs")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    args = parser.parse_args()
    if not sollol_reference.INSTALLED:
        sys.exit(sollol_reference.MISSING_REASON)
    calls, seconds, volume = (2_000, 2.0, 20_000) if args.quick else (20_000, 5.0, 100_000)
    print(f"Machine: {machine()}\n")
    print("### Caller's cost per decision\n")
    print("\n".join(caller_cost(calls)), "\n")
    print("### Decision → Redis stream latency\n")
    print("\n".join(latency(args.redis_url, seconds)), "\n")
    print("### Sustained throughput into Redis, one process\n")
    print("\n".join(throughput(args.redis_url, volume)), "\n")
    print("### Redis's own ceiling on this machine\n")
    print("\n".join(redis_ceiling(args.redis_url)), "\n")
    print("### Caller's cost with hostile metadata\n")
    print("\n".join(hostile_metadata(args.redis_url, 20 if args.quick else 200)), "\n")
    print("### Shutdown with an OTLP endpoint that never answers\n")
    print("\n".join(silent_otlp_shutdown(args.redis_url)))


if __name__ == "__main__":
    main()
