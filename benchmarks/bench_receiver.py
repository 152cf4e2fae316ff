"""`sollol-otel receiver` throughput: routing events per second from OTLP/HTTP into Redis.

    python benchmarks/bench_receiver.py [--events 100000] [--batch 512] [--senders 2] [--redis-url URL]

Requests are what the OTel Python SDK's OTLPLogExporter sends: records emitted by the real
RoutingLogger inside spans (so each carries a trace id), serialized by the SDK's own encoder.
Every record is a distinct decision, so none is dropped as a duplicate.

- decode: the receiver's CPU work per event without HTTP (parse, pick routing records, build and
  check the wire event, deduplicate), for protobuf and OTLP/JSON.
- end to end: the receiver as users run it (`python -m sollol_otel receiver`, its own process)
  and `--senders` processes posting requests of `--batch` records back to back over keep-alive
  connections; throughput = events in the Redis stream / time from the first request until the
  last event is in the stream; the receiver process's CPU time (user + system, /proc) per event
  meanwhile, which other work on a shared machine moves far less than the wall-clock rate. 503s
  (Redis backlog full) are retried after a short pause and counted. Prints Markdown rows for
  BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import redis
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from sollol_otel import RoutingLogger
from sollol_otel.receiver.app import decode
from sollol_otel.receiver.dedup import RecentDecisions
from sollol_otel.receiver.records import Signal

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def requests_of(events: int, batch: int) -> list[bytes]:
    """Serialized ExportLogsServiceRequests holding `events` distinct routing decisions."""
    resource = Resource.create({"service.name": "bench-router", "service.instance.id": "bench_1_0000abcd"})
    exporter = InMemoryLogRecordExporter()
    logs = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logs.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    routing = RoutingLogger(logs.get_logger("bench-router"))
    tracer = TracerProvider(resource=resource).get_tracer("bench-router")
    bodies = []
    for start in range(0, events, batch):
        exporter.clear()
        for n in range(start, min(events, start + batch)):
            with tracer.start_as_current_span("chat"):
                if n % 10 == 0:
                    routing.log_fallback("codellama:13b", "ollama", "rpc", "ollama_error: Out of memory")
                else:
                    routing.log_ollama_node_selected(
                        f"http://10.0.0.{n % 8}:11434",
                        "lowest_latency (15ms)",
                        "llama3.2:3b",
                        confidence=0.92,
                    )
        routing.flush(30)  # log events are emitted from the routing logger's own thread
        bodies.append(encode_logs(exporter.get_finished_logs()).SerializeToString())
    routing.close(5, then=lambda decision: None)  # nothing is recorded after
    logs.shutdown()
    return bodies


def as_otlp_json(body: bytes) -> bytes:
    """The same request in OTLP/JSON: proto3 JSON with hex trace and span ids."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    payload = json_format.MessageToDict(ExportLogsServiceRequest.FromString(body))
    for resource_logs in payload["resourceLogs"]:
        for scope_logs in resource_logs["scopeLogs"]:
            for record in scope_logs["logRecords"]:
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = base64.b64decode(record[key]).hex()
    return json.dumps(payload).encode()


def decode_rate(bodies: list[bytes], json_encoded: bool) -> float:
    """Events per second of one core's CPU time through decoding, wire conversion and
    deduplication, best of five passes (CPU time: other work on the machine moves it less)."""
    best = float("inf")
    count = 0
    for _ in range(5):
        recent = RecentDecisions()
        started = time.process_time()
        count = 0
        for body in bodies:
            count += len(recent.fresh(decode(Signal.LOGS, body, json_encoded=json_encoded).events))
        best = min(best, time.process_time() - started)
    return count / best


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send_all(url: str, bodies: list[bytes], compress: bool, retries: Any) -> None:
    headers = {**PROTOBUF, **({"Content-Encoding": "gzip"} if compress else {})}
    with httpx.Client(timeout=30) as client:
        for body in bodies:
            content = gzip.compress(body, 1) if compress else body
            while (response := client.post(url, content=content, headers=headers)).status_code == 503:
                with retries.get_lock():
                    retries.value += 1
                time.sleep(0.05)
            response.raise_for_status()


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the receiver did not deliver every event in time")
        time.sleep(0.005)


def end_to_end(
    bodies: list[bytes], events: int, senders: int, redis_url: str, compress: bool
) -> tuple[float, float, int]:
    """Events per second from the first request until the last event is in Redis, the receiver's
    CPU time per event in µs meanwhile, and the 503 count."""
    stream = f"bench:{uuid.uuid4().hex[:8]}:stream"
    port = 44000 + os.getpid() % 1000
    env = {
        **os.environ,
        "SOLLOL_REDIS_URL": redis_url,
        "SOLLOL_ROUTING_STREAM": stream,
        "SOLLOL_ROUTING_CHANNEL": f"{stream}:channel",
        "SOLLOL_ROUTING_STREAM_MAXLEN": str(events * 2),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "sollol_otel", "receiver", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url(redis_url)
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 15)
        retries = multiprocessing.Value("i", 0)
        shares = [bodies[i::senders] for i in range(senders)]
        workers = [
            multiprocessing.Process(target=send_all, args=(f"{base}/v1/logs", share, compress, retries))
            for share in shares
        ]
        started, cpu_before = time.perf_counter(), cpu_seconds(server.pid)
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wait_until(lambda: client.xlen(stream) >= events, 120)
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(server.pid) - cpu_before
        return events / elapsed, cpu / events * 1e6, retries.value
    finally:
        server.terminate()
        server.wait(15)
        client.delete(stream)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512, help="records per request (SDK default: 512)")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--redis-url", default=os.environ.get("SOLLOL_REDIS_URL", "redis://localhost:6379"))
    args = parser.parse_args()

    bodies = requests_of(args.events, args.batch)
    json_bodies = [as_otlp_json(body) for body in bodies[:20]]
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}")
    per_event = len(bodies[0]) // args.batch
    print(f"{args.events} events in requests of {args.batch}, {per_event} bytes/event (protobuf)\n")
    print("| path | events/s | receiver CPU per event |")
    print("|---|---|---|")
    for name, encoded, json_encoded in (("protobuf", bodies, False), ("OTLP/JSON", json_bodies, True)):
        rate = decode_rate(encoded, json_encoded)
        print(f"| decode + wire conversion + dedup, {name} | {rate:,.0f} (one core) | {1e6 / rate:.1f} µs |")
    for compress in (False, True):
        rate, cpu_us, retries = end_to_end(bodies, args.events, args.senders, args.redis_url, compress)
        label = f"protobuf {'gzip' if compress else 'uncompressed'}, {args.senders} senders"
        print(f"| HTTP → Redis stream, {label} | {rate:,.0f} ({retries} × 503) | {cpu_us:.1f} µs |")


if __name__ == "__main__":
    main()
