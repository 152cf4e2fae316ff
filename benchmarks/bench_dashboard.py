"""Decision → dashboard client latency with many clients, and the server's memory per client.

    python benchmarks/bench_dashboard.py [--clients 200] [--rate 1000] [--seconds 20]
        [--client-processes 2] [--redis-url URL] [--no-indexer]

- The dashboard runs as users run it (`python -m sollol_otel dashboard`, its own process, with
  its history indexer unless `--no-indexer`: run both to see what indexing costs the live path),
  reading a stream of the benchmark's own into a temporary history folder.
- A separate writer process XADDs SOLLOL-format events at `--rate` per second, one pipeline
  a millisecond (a finer pace only costs writer CPU that the server and clients share), each
  stamped with `bench_ns` (time.time_ns()) as it is written and numbered with `bench_seq`.
  The latency covers stream → the dashboard's one reader → fan-out → socket → client;
  decision → stream is the recording pipeline's own benchmark.
- `--clients` live clients, half WebSocket (`?batch=1`, as the page uses it), half SSE, all
  connected with `backlog=0` before the writer starts, spread over `--client-processes`
  processes so that the measuring side is not one saturated core. Clients are plain asyncio
  protocols reading the real byte streams (WebSocket frames; SSE over chunked HTTP/1.1, as
  the server sends it): a general-purpose client library's per-frame cost, times 200 clients,
  would make the clients, not the server, the bottleneck. Every event of every client is
  checked: its sequence number must be the next one (nothing lost, repeated or reordered),
  and the total must equal what was written. Latency is taken from the `bench_ns` inside the
  event when the chunk holding it is read.
- CPU: the server's, the client processes', the writer's and the whole machine's (both cores,
  from /proc/stat) during the measured seconds, so a starved measurement shows up as such.
- Memory: the server's RSS before any client, with all clients connected and idle, and at
  the end of the run.

Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

import httpx
import orjson
import redis
import uvloop

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
#: The stamps a writer puts in each event (the server keeps the event's keys in order); with several
#: writers (bench_scale.py's producers) each numbers its own events and says which it is.
STAMPS = re.compile(rb'bench_ns":(\d+),"bench_seq":(\d+)(?:,"bench_source":(\d+))?')


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


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, kernel) CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def group_cpu(pids: list[int]) -> tuple[float, float]:
    times = [cpu_seconds(pid) for pid in pids]
    return sum(user for user, _ in times), sum(kernel for _, kernel in times)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


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
                stamps = {"bench_ns": time.time_ns(), "bench_seq": n}
                event = {**TEMPLATE, "reason": "sufficient_resources", **stamps}
                pipe.xadd(stream, {"event": orjson.dumps(event)}, maxlen=10_000, approximate=True)
            pipe.execute()
            sent = due
        time.sleep(0.001)
    written.value = sent


class Feed(asyncio.Protocol):
    """One client connection: sends its request, then checks and times every event it reads."""

    transport_name = ""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.buffer = bytearray()
        self.headers_done = False
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.received = 0
        self.next_seq = 0
        self.next_by_source: dict[bytes, int] = {}
        self.out_of_order = 0
        self.sent_ns = array("q")  # each event's stamp, and when the chunk holding it was read
        self.read_ns = array("q")

    def request(self) -> bytes:
        raise NotImplementedError

    def body(self, data: bytes, now_ns: int) -> int:
        """Reads what `data` holds in full; returns how many bytes that was."""
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.transport.write(self.request())

    def data_received(self, data: bytes) -> None:
        """Parses `data` in place (no copy) unless a previous read left part of a frame or chunk."""
        now_ns = time.time_ns()
        if self.buffer:
            self.buffer += data
            data = bytes(self.buffer)
            self.buffer.clear()
        if not self.headers_done:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buffer += data
                return
            self.check_headers(data[:end].lower())
            data = data[end + 4 :]
            self.headers_done = True
        used = self.body(data, now_ns)
        if used < len(data):
            self.buffer += data[used:]

    def check_headers(self, head: bytes) -> None:
        raise NotImplementedError

    def events(self, payload: memoryview, now_ns: int) -> None:
        if not self.ready.done() and b'"caught_up"' in bytes(payload):
            self.ready.set_result(None)
        stamps = STAMPS.findall(payload)
        if not stamps:
            return
        if stamps[0][2]:
            self.check_sources(stamps)
        else:
            seqs = list(map(int, [seq for _, seq, _ in stamps]))
            if seqs != list(range(self.next_seq, self.next_seq + len(seqs))):
                self.out_of_order += 1
            self.next_seq = seqs[-1] + 1
        self.received += len(stamps)
        self.sent_ns.extend(map(int, [ns for ns, _, _ in stamps]))
        self.read_ns.extend([now_ns] * len(stamps))

    def check_sources(self, stamps: list[tuple[bytes, bytes, bytes]]) -> None:
        """Each writer's numbers must run on from where they stopped, whatever the interleaving."""
        following = self.next_by_source
        for _, seq, source in stamps:
            number = int(seq)
            if number != following.get(source, 0):
                self.out_of_order += 1
            following[source] = number + 1

    def latencies_ms(self, measure_from: int) -> array[float]:
        """Of the events written from `measure_from` on (time.time_ns())."""
        return array(
            "d",
            (
                (read - sent) / 1e6
                for sent, read in zip(self.sent_ns, self.read_ns, strict=True)
                if sent >= measure_from
            ),
        )


class WebSocketFeed(Feed):
    """RFC 6455 client: unmasked text frames from the server, masked pongs back."""

    transport_name = "WebSocket"

    def request(self) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET /ws/routing_events?batch=1&backlog=0 HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    def check_headers(self, head: bytes) -> None:
        if not head.startswith(b"http/1.1 101"):
            raise RuntimeError(f"WebSocket handshake refused: {head[:80]!r}")

    def body(self, data: bytes, now_ns: int) -> int:
        view, pos = memoryview(data), 0
        while len(data) - pos >= 2:
            first, length = data[pos], data[pos + 1] & 0x7F
            head = 2
            if length == 126:
                head = 4
            elif length == 127:
                head = 10
            if len(data) - pos < head:
                break
            if head > 2:
                length = int.from_bytes(data[pos + 2 : pos + head], "big")
            if len(data) - pos < head + length:
                break
            payload = view[pos + head : pos + head + length]
            pos += head + length
            opcode = first & 0x0F
            if not first & 0x80:
                raise RuntimeError("fragmented frame: the server sends whole messages")
            if opcode == 1:
                self.events(payload, now_ns)
            elif opcode == 9:
                self.pong(bytes(payload))
            elif opcode == 8:
                assert self.transport is not None
                self.transport.close()
        return pos

    def pong(self, payload: bytes) -> None:
        assert self.transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)


class SseFeed(Feed):
    """HTTP/1.1 GET of the SSE feed; the body is chunked (or plain) text/event-stream."""

    transport_name = "SSE"

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.chunked = False
        self.text = bytearray()

    def request(self) -> bytes:
        return f"GET /sse/routing_events?backlog=0 HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()

    def check_headers(self, head: bytes) -> None:
        if not head.startswith(b"http/1.1 200") or b"text/event-stream" not in head:
            raise RuntimeError(f"SSE request refused: {head[:80]!r}")
        self.chunked = b"transfer-encoding: chunked" in head

    def body(self, data: bytes, now_ns: int) -> int:
        view = memoryview(data)
        if not self.chunked:
            self.text_read(view, now_ns)
            return len(data)
        pos = 0
        while (line_end := data.find(b"\r\n", pos)) >= 0:
            start, size = line_end + 2, int(data[pos:line_end], 16)
            if len(data) < start + size + 2:
                break
            self.text_read(view[start : start + size], now_ns)
            pos = start + size + 2
        return pos

    def text_read(self, text: memoryview, now_ns: int) -> None:
        """Whole SSE events only: a read that ends inside one keeps the rest for the next."""
        if not self.text and text[-2:].tobytes() == b"\n\n":
            self.events(text, now_ns)
            return
        self.text += text
        end = self.text.rfind(b"\n\n")
        if end >= 0:
            self.events(memoryview(bytes(self.text[: end + 2])), now_ns)
            del self.text[: end + 2]


@dataclass
class ClientResult:
    transport: str
    received: int
    out_of_order: int
    latencies: bytes


def client_process(transports: list[str], host: str, port: int, conn: Connection) -> None:
    """Runs in its own process: connects its clients, reports ready, reads until told to stop."""

    async def main() -> list[ClientResult]:
        loop = asyncio.get_running_loop()
        kinds = {"WebSocket": WebSocketFeed, "SSE": SseFeed}
        feeds = [kinds[name](host, port) for name in transports]
        for feed in feeds:
            await loop.create_connection(lambda feed=feed: feed, host, port)  # type: ignore[misc]
        await asyncio.wait_for(asyncio.gather(*(f.ready for f in feeds)), 60)
        conn.send("ready")
        measure_from: int = await loop.run_in_executor(None, conn.recv)  # stop; when measuring began
        for feed in feeds:
            if feed.transport is not None:
                feed.transport.close()
        return [
            ClientResult(f.transport_name, f.received, f.out_of_order, f.latencies_ms(measure_from).tobytes())
            for f in feeds
        ]

    conn.send(uvloop.run(main()))


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] if ordered else 0.0


Clients = list[tuple[multiprocessing.process.BaseProcess, Connection]]


def connect_clients(count: int, processes: int, port: int) -> Clients:
    """`count` clients (half WebSocket, half SSE) in `processes` processes, all caught up."""
    context = multiprocessing.get_context("fork")
    transports = ["WebSocket" if i % 2 == 0 else "SSE" for i in range(count)]
    children: Clients = []
    for k in range(processes):
        parent_end, child_end = context.Pipe()
        share = [t for i, t in enumerate(transports) if i // 2 % processes == k]  # both kinds
        process = context.Process(target=client_process, args=(share, "127.0.0.1", port, child_end))
        process.start()
        children.append((process, parent_end))
    for _, conn in children:
        if not conn.poll(90) or conn.recv() != "ready":
            raise RuntimeError("clients did not connect")
    return children


def stop_clients(children: Clients, measure_from: int) -> list[ClientResult]:
    """What each client received, with the latencies of events written from `measure_from` on."""
    for _, conn in children:
        conn.send(measure_from)  # stop reading; measure from here
    results: list[ClientResult] = []
    for process, conn in children:
        results.extend(conn.recv())
        process.join(10)
    return results


def run(args: argparse.Namespace, server_pid: int, port: int, stream: str) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    idle_rss = rss_kib(server_pid)
    children = connect_clients(args.clients, args.client_processes, port)
    time.sleep(1)
    connected_rss = rss_kib(server_pid)
    written = context.Value("q", 0)
    total = args.warmup + args.seconds
    writer_process = context.Process(target=writer, args=(args.redis_url, stream, args.rate, total, written))
    writer_process.start()
    time.sleep(args.warmup)
    pids: dict[str, list[int]] = {
        "server": [server_pid],
        "clients": [p.pid for p, _ in children if p.pid is not None],
        "writer": [writer_process.pid] if writer_process.pid is not None else [],
    }
    before = {name: group_cpu(group) for name, group in pids.items()}
    machine_before = machine_ticks()
    measure_from = time.time_ns()
    time.sleep(args.seconds)
    cpu = {
        name: tuple(
            (after - earlier) / args.seconds
            for after, earlier in zip(group_cpu(group), before[name], strict=True)
        )
        for name, group in pids.items()
    }
    machine_after = machine_ticks()
    load = os.getloadavg()
    writer_process.join(30)
    time.sleep(2)  # let the last events arrive
    loaded_rss = rss_kib(server_pid)
    results = stop_clients(children, measure_from)
    busy = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])
    return {
        "results": results,
        "written": written.value,
        "idle_rss": idle_rss,
        "connected_rss": connected_rss,
        "loaded_rss": loaded_rss,
        "cpu": cpu,
        "machine_busy": busy,
        "load": load,
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    results: list[ClientResult] = result["results"]
    written = int(result["written"])
    complete = sum(r.received == written and r.out_of_order == 0 for r in results)
    flush = os.environ.get("SOLLOL_DASHBOARD_FLUSH_MS", "default")
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average at the end "
        + ", ".join(f"{v:.2f}" for v in result["load"])
    )
    print(
        f"{args.clients} clients in {args.client_processes} processes, {args.rate} events/s for "
        f"{args.seconds}s after {args.warmup}s warm-up, SOLLOL_DASHBOARD_FLUSH_MS={flush}; {written} events "
        f"written; {complete}/{len(results)} clients received exactly all of them, in order, once"
    )
    if complete < len(results):
        print(
            f"  incomplete: fewest received {min(r.received for r in results)}, "
            f"most {max(r.received for r in results)}, "
            f"out-of-order/lost/repeated seen by {sum(r.out_of_order > 0 for r in results)} clients"
        )
    print("\n| transport | clients | events measured | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for name in ("WebSocket", "SSE", "all"):
        group = [r for r in results if name in ("all", r.transport)]
        values = array("d")
        for r in group:
            values.frombytes(r.latencies)
        ordered = sorted(values)
        cells = [f"{percentile(ordered, q):.1f}" for q in (50, 90, 99)] + [f"{max(ordered, default=0):.1f}"]
        print(f"| {name} | {len(group)} | {len(ordered)} | " + " | ".join(cells) + " |")
    idle, connected, loaded = (int(result[k]) for k in ("idle_rss", "connected_rss", "loaded_rss"))
    per_client = (connected - idle) / len(results)
    cpu = result["cpu"]
    print(
        f"\nserver RSS: {idle / 1024:.1f} MiB idle, {connected / 1024:.1f} MiB with {len(results)} clients "
        f"({per_client:.0f} KiB per client), {loaded / 1024:.1f} MiB after the run"
    )
    print(
        "CPU during the measured seconds (100% = one core; user + kernel): "
        + ", ".join(
            f"{name} {sum(cpu[name]) * 100:.0f}% ({cpu[name][0] * 100:.0f} + {cpu[name][1] * 100:.0f})"
            for name in ("server", "clients", "writer")
        )
        + "; "
        f"machine {result['machine_busy'] * 100:.0f}% busy of {os.cpu_count()} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--server-log", help="write the dashboard's stderr to this file")
    parser.add_argument("--no-indexer", action="store_true", help="the dashboard without its history indexer")
    parser.add_argument("--redis-url", default=os.environ.get("SOLLOL_REDIS_URL", "redis://127.0.0.1:6379"))
    args = parser.parse_args()
    stream = f"bench:dashboard:{uuid.uuid4().hex[:8]}"
    port = free_port()
    history = tempfile.mkdtemp(prefix="bench-dashboard-history-")
    env = {
        **os.environ,
        "SOLLOL_ROUTING_STREAM": stream,
        "SOLLOL_ROUTING_CHANNEL": stream + ":channel",
        "SOLLOL_HISTORY_DIR": history,
    }
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
            *(["--no-indexer"] if args.no_indexer else []),
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
        print(f"dashboard pid {server.pid} on port {port}", flush=True)
        report(args, run(args, server.pid, port, stream))
    finally:
        server.terminate()
        server.wait(10)
        redis.Redis.from_url(args.redis_url).delete(stream)
        shutil.rmtree(history, ignore_errors=True)


if __name__ == "__main__":
    main()
