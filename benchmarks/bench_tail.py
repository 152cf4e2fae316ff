"""`sollol-otel tail --history 10000` with a filter: wall time of the real command, target ≤ 1 s.

    /work/venv/bin/python benchmarks/bench_tail.py [--runs 7] [--redis-url URL]

Fills a private stream key with 10,000 SOLLOL-shaped events (8 models, round robin), then runs
the command as a user would (a fresh `python -m sollol_otel` process, stdout into a pipe) and
reports median and worst wall time per row. Interpreter start and imports are included; the
first row shows what they cost alone. Prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import uuid

import redis

EVENTS = 10_000
MODELS = [f"model-{n}:7b" for n in range(8)]


def fill(client: redis.Redis, stream: str) -> None:
    pipe = client.pipeline(transaction=False)
    for n in range(EVENTS):
        event = {
            "timestamp": "2026-11-27T12:03:45.123456", "instance_id": f"host{n % 4}_42_a1b2c3d4",
            "hostname": f"host{n % 4}", "pid": 42, "event_type": "ROUTE_DECISION",
            "model": MODELS[n % len(MODELS)], "backend": "ollama",
            "reason": "sufficient_resources (estimated 2.5GB)", "cached": False, "parameter_count": 7,
        }  # fmt: skip
        pipe.xadd(stream, {"event": json.dumps(event)})
    pipe.execute()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], env: dict[str, str], runs: int) -> tuple[float, float, float, int]:
    """Median and worst wall seconds, median CPU seconds, and the lines of the last run's stdout.

    CPU time is what the command itself costs; wall time also holds waiting for a busy machine.
    """
    walls, cpus, lines = [], [], 0
    for _ in range(runs):
        started, cpu = time.perf_counter(), _children_cpu()
        result = subprocess.run(
            [sys.executable, "-m", "sollol_otel", *args], capture_output=True, env=env, check=True
        )
        walls.append(time.perf_counter() - started)
        cpus.append(_children_cpu() - cpu)
        lines = result.stdout.count(b"\n")
    return statistics.median(walls), max(walls), statistics.median(cpus), lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--redis-url", default=os.environ.get("SOLLOL_REDIS_URL", "redis://127.0.0.1:6379"))
    options = parser.parse_args()
    stream = f"bench:tail:{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(options.redis_url)
    env = {**os.environ, "SOLLOL_REDIS_URL": options.redis_url, "SOLLOL_ROUTING_STREAM": stream}
    history = ["tail", "--history", "10000"]
    rows = [
        ("`--help` (interpreter start and imports only)", ["--help"]),
        ("`tail --history 10000 --model model-3:7b` (1,250 shown)", [*history, "--model", MODELS[3]]),
        ("same, `--color always`", [*history, "--model", MODELS[3], "--color", "always"]),
        ("same, `-o json`", [*history, "--model", MODELS[3], "-o", "json"]),
        ("`tail --history 10000 --instance host1` (2,500 shown)", [*history, "--instance", "host1"]),
        ("`tail --history 10000`, no filter (10,000 shown)", [*history, "--color", "always"]),
        ("`stats` over the 10,000", ["stats", "-o", "json"]),
    ]
    try:
        fill(client, stream)
        print(
            f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), load average "
            f"{', '.join(f'{load:.1f}' for load in os.getloadavg())}, Python {platform.python_version()}, "
            f"Redis {client.info()['redis_version']}, {options.runs} runs per row\n"
        )
        print(
            "| command | wall median s | wall worst s | CPU median s | stdout lines |\n|---|---|---|---|---|"
        )
        for label, args in rows:
            median, worst, cpu, lines = timed(args, env, options.runs)
            print(f"| {label} | {median:.3f} | {worst:.3f} | {cpu:.3f} | {lines} |")
    finally:
        client.delete(stream)
        client.close()


if __name__ == "__main__":
    main()
