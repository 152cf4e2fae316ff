"""The whole system at scale: M producer processes → one Redis → dashboard workers → 200 clients.

    python benchmarks/bench_scale.py [--producers 4] [--workers 2] [--clients 200]
        [--rates 250,500,1000,2000,4000] [--seconds 10] [--warmup 3]

- Redis: a redis-server of the run's own (Debian's /usr/bin/redis-server when present), so
  other work on the machine's shared Redis does not mix in.
- Producers: `--producers` processes, each a simulated router instance recording route
  decisions through the real pipeline (`get_routing_logger().log_route_decision` → OTel SDK →
  bridge → the writer's XADD + PUBLISH), together at the step's rate. Each decision carries
  `bench_ns` (time.time_ns() at the call), `bench_seq` and `bench_source`, so latency is
  decision → client and every client checks each producer's events for loss, repeats and order.
- Dashboard: `sollol-otel dashboard --workers N`, one port, each worker its own stream reader.
- Clients: bench_dashboard.py's (half WebSocket `?batch=1`, half SSE, in two processes, every
  event checked), connected before each step starts.
- Each step, at a higher rate, measures: the stream's rate (Redis's `entries-added`), what the
  producers recorded and dropped, whether every client got every event once and in order,
  decision → client p50/p99, and CPU (/proc) of each part and of the machine.
- Redis's own XADD ceiling is measured in the same run (redis-benchmark, pipelined), and Redis
  memory per event (MEMORY USAGE over a stream of 10,000 realistic events, every event type).

The saturation point is the highest step where the stream took the offered rate, nothing was
dropped and every client got every event once, in order (latency is reported beside it: on a
shared machine it says more about the other work than about the system); the bound is named
from the CPU figures of the first step past it. Prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import uuid
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dashboard import connect_clients, cpu_seconds, free_port, machine_ticks, percentile, stop_clients
from bench_recording import redis_ceiling
from redis_servers import RedisServer

import sollol_otel
from sollol_otel.cli.emit_test import record_session

DEBIAN_REDIS = "/usr/bin/redis-server"
#: A step keeps up when the stream takes at least this share of the offered rate.
KEEPING_UP = 0.95


def producer(url: str, stream: str, source: int, rate: float, seconds: float, conn: Connection) -> None:
    """Runs in its own process: a router instance recording decisions at `rate` for `seconds`."""
    logger = sollol_otel.configure(redis_url=url, stream=stream, channel=stream + ":channel")
    start, sent = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        for n in range(sent, due):
            logger.log_route_decision(
                "llama3.2:3b", "ollama", "sufficient_resources",
                bench_ns=time.time_ns(), bench_seq=n, bench_source=source,
            )  # fmt: skip
        sent = max(sent, due)
        time.sleep(max(0.001, (sent + 1) / rate - elapsed))  # until the next one is due
    sollol_otel.force_flush(30)
    stats = sollol_otel.bridge_stats()
    sollol_otel.shutdown()
    conn.send((sent, stats.exported, stats.dropped))


def workers_of(pid: int) -> list[int]:
    """The worker processes uvicorn's supervisor started (not multiprocessing's resource tracker)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return [child for child in found if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def cpu_of(pids: list[int]) -> float:
    return sum(sum(cpu_seconds(pid)) for pid in pids)


@dataclass
class Step:
    rate: int
    recorded: int
    delivered_to_redis: int
    dropped: int
    stream_rate: float
    clients: int
    complete: int
    p50: float
    p99: float
    cpu: dict[str, float]  # share of one core, per part
    per_worker: list[float]  # the same, for each dashboard worker
    machine_busy: float
    load: tuple[float, float, float]

    @property
    def keeps_up(self) -> bool:
        """Everything offered reached the stream at the offered rate and every client, once, in order."""
        return (
            self.complete == self.clients and self.dropped == 0 and self.stream_rate >= KEEPING_UP * self.rate
        )


def run_step(
    args: argparse.Namespace, url: str, redis_pid: int, dashboard_pid: int, port: int, rate: int
) -> Step:
    stream = os.environ["SOLLOL_ROUTING_STREAM"]
    context = multiprocessing.get_context("fork")
    clients = connect_clients(args.clients, 2, port)
    producers = []
    for source in range(args.producers):
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=producer,
            args=(url, stream, source, rate / args.producers, args.warmup + args.seconds, child_end),
        )
        process.start()
        producers.append((process, parent_end))
    time.sleep(args.warmup)
    client = redis.Redis.from_url(url)
    parts = {
        "producers": [p.pid for p, _ in producers if p.pid is not None],
        "redis": [redis_pid],
        "dashboard": [dashboard_pid, *workers_of(dashboard_pid)],
        "clients": [p.pid for p, _ in clients if p.pid is not None],
    }
    workers = parts["dashboard"][1:]
    before = {name: cpu_of(pids) for name, pids in parts.items()}
    workers_before = [cpu_of([pid]) for pid in workers]
    added_before = int(client.xinfo_stream(stream)["entries-added"])
    machine_before, measure_from, began = machine_ticks(), time.time_ns(), time.monotonic()
    time.sleep(args.seconds)
    elapsed = time.monotonic() - began
    cpu = {name: (cpu_of(pids) - before[name]) / elapsed for name, pids in parts.items()}
    per_worker = [
        (cpu_of([pid]) - earlier) / elapsed for pid, earlier in zip(workers, workers_before, strict=True)
    ]
    added_after = int(client.xinfo_stream(stream)["entries-added"])
    machine_after, load = machine_ticks(), os.getloadavg()
    totals = [conn.recv() for _, conn in producers]
    for process, _ in producers:
        process.join(30)
    time.sleep(2)  # the last events reach the clients
    results = stop_clients(clients, measure_from)
    exported = sum(t[1] for t in totals)
    latencies = array("d")
    for result in results:
        latencies.frombytes(result.latencies)
    ordered = sorted(latencies)
    return Step(
        rate=rate,
        recorded=sum(t[0] for t in totals),
        delivered_to_redis=exported,
        dropped=sum(t[2] for t in totals),
        stream_rate=(added_after - added_before) / elapsed,
        clients=len(results),
        complete=sum(r.received == exported and r.out_of_order == 0 for r in results),
        p50=percentile(ordered, 50),
        p99=percentile(ordered, 99),
        cpu=cpu,
        per_worker=per_worker,
        machine_busy=(machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1]),
        load=load,
    )


def memory_per_event(url: str) -> str:
    """MEMORY USAGE (all nodes sampled) over XLEN for 10,000 events of every type, as routers record them."""
    stream = f"bench:memory:{uuid.uuid4().hex[:8]}"
    logger = sollol_otel.configure(redis_url=url, stream=stream, channel=stream + ":channel")
    recorded = 0
    while recorded < 10_000:
        recorded += record_session(logger)
    sollol_otel.force_flush(30)
    sollol_otel.shutdown()
    client = redis.Redis.from_url(url)
    length = int(client.xlen(stream))
    used = int(client.memory_usage(stream, samples=0) or 0)
    client.delete(stream)
    return f"{used:,} bytes for {length:,} entries: {used / length:.0f} bytes per event"


def bound(step: Step) -> str:
    """Which part stopped the system, from where the CPU went."""
    busiest = max(step.cpu, key=lambda name: step.cpu[name])
    shares = ", ".join(f"{name} {share * 100:.0f} %" for name, share in step.cpu.items())
    shares += " (workers " + " + ".join(f"{w * 100:.0f} %" for w in step.per_worker) + ")"
    if step.machine_busy >= 0.9:
        return (
            f"the machine's {os.cpu_count()} cores ({step.machine_busy:.0%} busy; {shares}; most: {busiest})"
        )
    return f"{busiest} ({shares}; machine {step.machine_busy:.0%} busy)"


def report(
    args: argparse.Namespace, steps: list[Step], ceiling: list[str], memory: str, version: str
) -> None:
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, Redis {version}; {args.producers} producers, "
        f"{args.workers} dashboard workers, {args.clients} clients (half WebSocket, half SSE) "
        "in 2 processes; "
        f"{args.seconds:.0f} s measured per step after {args.warmup:.0f} s warm-up"
    )
    print("\nRedis's own ceiling, same server, same run: " + "; ".join(ceiling))
    print(f"Redis memory per event: {memory}")
    print(
        "\n| offered events/s | into the stream /s | dropped | clients with every event once, in order "
        "| p50 ms | p99 ms | CPU: producers | Redis | dashboard | clients | machine busy | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in steps:
        cpu = [f"{s.cpu[name] * 100:.0f} %" for name in ("producers", "redis", "dashboard", "clients")]
        print(
            f"| {s.rate:,} | {s.stream_rate:,.0f} | {s.dropped} | {s.complete}/{s.clients} | {s.p50:.1f} | "
            f"{s.p99:.1f} | "
            + " | ".join(cpu)
            + f" | {s.machine_busy:.0%} | "
            + " ".join(f"{v:.2f}" for v in s.load)
            + " |"
        )
    kept = [s for s in steps if s.keeps_up]
    failed = next((s for s in steps if not s.keeps_up), None)
    print(f"\nsaturation: {kept[-1].rate:,} events/s kept up" if kept else "\nsaturation: no step kept up")
    if failed is not None:
        print(f"first step past it: {failed.rate:,} events/s; bound: {bound(failed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rates", default="250,500,1000,2000,4000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    server = RedisServer(binary=DEBIAN_REDIS if Path(DEBIAN_REDIS).exists() else None).start()
    stream = f"bench:scale:{uuid.uuid4().hex[:8]}"
    os.environ |= {"SOLLOL_ROUTING_STREAM": stream, "SOLLOL_ROUTING_CHANNEL": stream + ":channel"}
    port = free_port()
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "sollol_otel", "dashboard", "--workers", str(args.workers),
         "--port", str(port), "--redis-url", server.url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        version = str(redis.Redis.from_url(server.url).info("server")["redis_version"])
        ceiling = redis_ceiling(server.url)
        memory = memory_per_event(server.url)
        deadline = time.monotonic() + 60
        while len(workers_of(dashboard.pid)) < args.workers or not _answers(port):
            if time.monotonic() > deadline:
                raise RuntimeError("dashboard workers did not start")
            time.sleep(0.2)
        steps: list[Step] = []
        for rate in (int(r) for r in args.rates.split(",")):
            steps.append(run_step(args, server.url, server.pid, dashboard.pid, port, rate))
            print(f"{rate} events/s: {steps[-1]}", file=sys.stderr, flush=True)
            if not steps[-1].keeps_up:
                break
        report(args, steps, ceiling, memory, version)
    finally:
        dashboard.terminate()
        dashboard.wait(20)
        server.close()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    main()
