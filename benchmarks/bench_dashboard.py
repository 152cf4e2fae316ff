"""Decision → dashboard client latency with many clients, and the server's memory per client.

    python benchmarks/bench_dashboard.py [--clients 200] [--rate 1000] [--seconds 20] [--redis-url URL]

- The dashboard runs as users run it (`python -m sollol_otel dashboard`, its own process),
  reading a stream of the benchmark's own.
- A separate writer process XADDs SOLLOL-format events at `--rate` per second, paced every
  half millisecond, each stamped with `bench_ns` (time.time_ns()) as it is written. The latency
  covers stream → the dashboard's one reader → fan-out → socket → client; decision → stream is
  the recording pipeline's own benchmark.
- `--clients` live clients in this process, half WebSocket (`?batch=1`, as the page uses it),
  half SSE, all connected with `backlog=0` before the writer starts. Each notes the arrival
  time of every event it receives (the `bench_ns` inside the event). A client must receive
  every event written: the count is checked, so nothing lost or repeated goes unnoticed.
- Memory: the server's RSS before any client, with all clients connected and idle, and at
  the end of the run.

Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
from websockets.asyncio.client import connect

TEMPLATE = {
    "timestamp": "2026-11-27T12:03:45.123456",
    "instance_id": "bench_1_0000abcd",
    "hostname": "bench",
    "pid": 1,
    "event_type": "ROUTE_DECISION",
    "model": "llama3.2:3b",
    "backend": "ollama",
    "cached": False,
}
BENCH_NS = re.compile(rb'"bench_ns":(\d+)')


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def writer(redis_url: str, stream: str, rate: int, seconds: float, written: Any) -> None:
    """Runs in its own process: SOLLOL-format events XADDed at a steady rate, each stamped when written."""
    client = redis.Redis.from_url(redis_url)
    start = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        if due > sent:
            pipe = client.pipeline(transaction=False)
            for n in range(sent, due):
                event = {**TEMPLATE, "reason": f"sufficient_resources #{n}", "bench_ns": time.time_ns()}
                pipe.xadd(stream, {"event": json.dumps(event)}, maxlen=10_000, approximate=True)
            pipe.execute()
            sent = due
        time.sleep(0.0005)
    written.value = sent


@dataclass
class Client:
    transport: str
    received: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, data: bytes, now_ns: int, measure_from_ns: int) -> None:
        for match in BENCH_NS.finditer(data):
            self.received += 1
            sent_ns = int(match.group(1))
            if sent_ns >= measure_from_ns:
                self.latencies_ms.append((now_ns - sent_ns) / 1e6)


async def ws_client(url: str, client: Client, measure: list[int]) -> None:
    async with connect(f"{url}?batch=1&backlog=0", max_size=None, compression=None) as ws:
        async for frame in ws:
            data = frame.encode() if isinstance(frame, str) else frame
            if not client.ready.is_set() and b'"caught_up"' in data:
                client.ready.set()
            client.note(data, time.time_ns(), measure[0])


async def sse_client(host: str, port: int, client: Client, measure: list[int]) -> None:
    """Plain HTTP/1.1: httpx's per-chunk cost would make the client, not the server, the bottleneck."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /sse/routing_events?backlog=0 HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    tail = b""
    try:
        while data := await reader.read(1 << 16):
            complete, _, rest = (tail + data).rpartition(b"\n\n")  # only whole SSE events
            tail = rest
            if not client.ready.is_set() and b"caught_up" in complete:
                client.ready.set()
            client.note(complete, time.time_ns(), measure[0])
    finally:
        writer.close()


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1] if len(values) > 1 else 0.0
    )


async def run(args: argparse.Namespace, server_pid: int, base: str, stream: str) -> dict[str, object]:
    clients = [Client("WebSocket" if i % 2 == 0 else "SSE") for i in range(args.clients)]
    measure = [2**63]  # no latency recorded until the warm-up is over
    idle_rss = rss_kib(server_pid)
    host, port = base.removeprefix("http://").split(":")
    ws_url = base.replace("http://", "ws://") + "/ws/routing_events"
    tasks = [
        asyncio.create_task(
            ws_client(ws_url, c, measure)
            if c.transport == "WebSocket"
            else sse_client(host, int(port), c, measure)
        )
        for c in clients
    ]
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 60)
    await asyncio.sleep(1)
    connected_rss = rss_kib(server_pid)
    written = multiprocessing.Value("q", 0)
    total = args.warmup + args.seconds
    process = multiprocessing.Process(target=writer, args=(args.redis_url, stream, args.rate, total, written))
    cpu_before = cpu_seconds(server_pid)
    client_cpu_before = time.process_time()
    process.start()
    await asyncio.sleep(args.warmup)
    measure[0] = time.time_ns()
    await asyncio.sleep(args.seconds)
    cpu_used = cpu_seconds(server_pid) - cpu_before
    await asyncio.to_thread(process.join, 30)
    await asyncio.sleep(2)  # let the last events arrive
    loaded_rss = rss_kib(server_pid)
    client_cpu = (time.process_time() - client_cpu_before) / (total + 2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "clients": clients,
        "written": written.value,
        "idle_rss": idle_rss,
        "connected_rss": connected_rss,
        "loaded_rss": loaded_rss,
        "server_cpu": cpu_used / args.seconds,
        "client_cpu": client_cpu,
    }


def report(args: argparse.Namespace, result: dict[str, object]) -> None:
    clients: list[Client] = result["clients"]  # type: ignore[assignment]
    written = int(result["written"])  # type: ignore[call-overload]
    complete = sum(c.received == written for c in clients)
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
    print(
        f"{args.clients} clients, {args.rate} events/s for {args.seconds}s after {args.warmup}s warm-up; "
        f"{written} events written; {complete}/{len(clients)} clients received exactly all of them"
    )
    if complete < len(clients):
        shortest = min(c.received for c in clients)
        print(f"  incomplete clients: fewest received {shortest}, most {max(c.received for c in clients)}")
    print("\n| transport | clients | events measured | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for name in ("WebSocket", "SSE", "all"):
        group = [c for c in clients if name in ("all", c.transport)]
        values = [v for c in group for v in c.latencies_ms]
        cells = [f"{percentile(values, q):.1f}" for q in (50, 90, 99)] + [f"{max(values, default=0):.1f}"]
        print(f"| {name} | {len(group)} | {len(values)} | " + " | ".join(cells) + " |")
    idle, connected, loaded = (int(result[k]) for k in ("idle_rss", "connected_rss", "loaded_rss"))  # type: ignore[call-overload]
    per_client = (connected - idle) / len(clients)
    print(
        f"\nserver RSS: {idle / 1024:.1f} MiB idle, {connected / 1024:.1f} MiB with {len(clients)} clients "
        f"({per_client:.0f} KiB per client), {loaded / 1024:.1f} MiB after the run; "
        f"server CPU {float(result['server_cpu']) * 100:.0f}% of one core during the run, "  # type: ignore[arg-type]
        f"clients' process {float(result['client_cpu']) * 100:.0f}%"  # type: ignore[arg-type]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--server-log", help="write the dashboard's stderr to this file")
    parser.add_argument("--redis-url", default=os.environ.get("SOLLOL_REDIS_URL", "redis://127.0.0.1:6379"))
    args = parser.parse_args()
    stream = f"bench:dashboard:{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {**os.environ, "SOLLOL_ROUTING_STREAM": stream, "SOLLOL_ROUTING_CHANNEL": stream + ":channel"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sollol_otel",
            "dashboard",
            "--port",
            str(port),
            "--redis-url",
            args.redis_url,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(args.server_log, "wb") if args.server_log else subprocess.DEVNULL,  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("dashboard did not start")
            time.sleep(0.1)
        report(args, asyncio.run(run(args, server.pid, base, stream)))
    finally:
        server.terminate()
        server.wait(10)
        redis.Redis.from_url(args.redis_url).delete(stream)


if __name__ == "__main__":
    main()
