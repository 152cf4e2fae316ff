"""`sollol-otel tail --history 10000` side by side with SOLLOL 0.9.66's own viewer: wall time and
peak memory of the real commands, in one run.

    python benchmarks/bench_tail.py [--runs 7] [--events 10000]

Starts a redis-server of its own on a free port (SOLLOL's viewer reads the fixed key
`sollol:routing_stream`, which must not be anyone else's), fills it with SOLLOL-shaped events
(8 models, 4 instances, round robin), then runs each command as a user would: a fresh process
of this interpreter, stdout into a pipe that is drained, ours and SOLLOL's alternating so both
see the same machine. SOLLOL's `routing_viewer.py` runs from the installed sollol 0.9.66
(scripts/install_sollol.sh) by path, so its heavy package __init__ stays out, as `python -m
sollol.routing_viewer` would not. Reports the median and worst wall time, the median CPU time
and the largest peak RSS per row, and ours ÷ SOLLOL's, in wall and in CPU time (the steadier one
when other work shares the machine). Prints a markdown table for BENCHMARKS.md.

sollol_otel's bytecode is compiled first, as `pip install` compiles an installed package's (and
SOLLOL's and redis-py's were): an editable checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise
compile every module of ours on every run.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

MODELS = [f"model-{n}:7b" for n in range(8)]
STREAM = "sollol:routing_stream"  # the only key SOLLOL's viewer reads


def package_dir(name: str, missing: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(missing)
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(port: int, directory: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server") or sys.exit("no redis-server on PATH")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", directory],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    return server


def fill(client: redis.Redis, events: int) -> None:
    pipe = client.pipeline(transaction=False)
    for n in range(events):
        event = {
            "timestamp": "2026-11-27T12:03:45.123456", "instance_id": f"host{n % 4}_42_a1b2c3d4",
            "hostname": f"host{n % 4}", "pid": 42, "event_type": "ROUTE_DECISION",
            "model": MODELS[n % len(MODELS)], "backend": "ollama",
            "reason": "sufficient_resources (estimated 2.5GB)", "cached": False, "parameter_count": 7,
        }  # fmt: skip
        pipe.xadd(STREAM, {"event": json.dumps(event)})
    pipe.execute()


#: Runs one command and reports its own wall time, exit code, peak RSS and CPU time on fd N. Linux
#: counts a child's peak from the process it was forked from: forked from this small interpreter
#: (not from the benchmark, which holds redis-py), the command's own peak is what shows.
RUNNER = """
import json, os, sys, time
fd, command = int(sys.argv[1]), sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.close(fd)
    os.execv(command[0], command)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
report = [wall, os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime]
os.write(fd, json.dumps(report).encode())
"""


@dataclass
class Samples:
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peak_kib: int = 0

    def run(self, command: list[str], env: dict[str, str]) -> None:
        """One run of `command`, stdout into a pipe that is drained, as `| less` would."""
        read, write = os.pipe()
        try:
            subprocess.run(
                [sys.executable, "-S", "-c", RUNNER, str(write), *command],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, pass_fds=(write,), check=True,
            )  # fmt: skip
            os.close(write)
            with os.fdopen(read) as results:
                wall, code, peak_kib, cpu = json.loads(results.read())
        finally:
            for fd in (read, write):
                with contextlib.suppress(OSError):
                    os.close(fd)
        if code != 0:
            sys.exit(f"{command} exited {code}")
        self.walls.append(wall)
        self.cpus.append(cpu)
        self.peak_kib = max(self.peak_kib, peak_kib)

    def cells(self) -> str:
        wall, worst, cpu = statistics.median(self.walls), max(self.walls), statistics.median(self.cpus)
        return f"{wall:.3f} | {worst:.3f} | {cpu:.3f} | {self.peak_kib / 1024:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--events", type=int, default=10_000)
    options = parser.parse_args()
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    ours = [sys.executable, "-m", "sollol_otel"]
    viewer = package_dir("sollol", "sollol 0.9.66 is not installed: bash scripts/install_sollol.sh")
    theirs = [sys.executable, str(viewer / "routing_viewer.py"), "--redis-url", url]
    compileall.compile_dir(package_dir("sollol_otel", "sollol_otel is not installed"), quiet=1)
    history = ["--history", str(options.events)]
    recent = options.events - options.events // 5  # the last 4/5 of the entries
    matches = recent // len(MODELS)  # one model's events among them
    rows: list[tuple[str, list[str], list[str] | None]] = [
        ("`--help` (interpreter start and imports only)", [*ours, "--help"], [*theirs, "--help"]),
        (
            f"`tail --history {options.events}`, no filter",
            [*ours, "tail", *history, "--color", "always"],
            [*theirs, *history],
        ),
        (
            f"the same {matches} events, `--model {MODELS[3]}`: ours `--history {matches}` (the last "
            f"matches, all in the stream), SOLLOL's `--history {recent}` (the last entries, filtered)",
            [*ours, "tail", "--history", str(matches), "--model", MODELS[3], "--color", "always"],
            [*theirs, "--history", str(recent), "--model", MODELS[3]],
        ),
        (
            f"same, both `--history {options.events} --model {MODELS[3]}` (an eighth shown: the stream holds "
            "fewer matches than asked for, so ours takes its full path, where older events would be found)",
            [*ours, "tail", *history, "--model", MODELS[3], "--color", "always"],
            [*theirs, *history, "--model", MODELS[3]],
        ),
        ("same, no filter, `-o line`", [*ours, "tail", *history, "-o", "line", "--color", "always"], None),
        ("same, no filter, `-o json`", [*ours, "tail", *history, "-o", "json"], None),
        ("`stats`", [*ours, "stats", "-o", "json"], None),
    ]
    env = {**os.environ, "SOLLOL_REDIS_URL": url, "SOLLOL_ROUTING_STREAM": STREAM}
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as directory:
        server = start_redis(port, directory)
        try:
            client = redis.Redis(port=port)
            fill(client, options.events)
            version = client.info()["redis_version"]
            client.close()
            results = []
            for label, command, reference in rows:
                mine, sollol = Samples(), Samples()
                for _ in range(options.runs):  # alternating: both see the same load
                    mine.run(command, env)
                    if reference is not None:
                        sollol.run(reference, env)
                results.append((label, mine, sollol if reference is not None else None))
        finally:
            server.terminate()
            server.wait(10)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), load average {load} at the end, "
        f"Python {platform.python_version()}, Redis {version}, {options.runs} runs per row\n"
    )
    print(
        "| command | ours: wall median s | wall worst s | CPU median s | peak MiB "
        "| SOLLOL 0.9.66: wall median s | wall worst s | CPU median s | peak MiB "
        "| ours ÷ SOLLOL: wall | CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, mine, sollol in results:
        if sollol is None:
            print(f"| {label} | {mine.cells()} | – | – | – | – | – | – |")
            continue
        wall = statistics.median(mine.walls) / statistics.median(sollol.walls)
        cpu = statistics.median(mine.cpus) / statistics.median(sollol.cpus)
        print(f"| {label} | {mine.cells()} | {sollol.cells()} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
