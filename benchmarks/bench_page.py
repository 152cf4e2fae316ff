"""The page, live at 1,000 events/s: does it stay responsive? Long tasks in Chromium's own timeline.

    python benchmarks/bench_page.py [--rate 1000] [--seconds 30] [--window 10000] [--redis-url URL]

- The dashboard runs as users run it (`python -m sollol_otel dashboard`, its own process),
  reading a stream of the benchmark's own that already holds `--window` events (a full default
  window, spread over the last five minutes, so the page loads real charts).
- A separate writer process XADDs varied SOLLOL-format events (every type, four nodes, three
  instances, several models) at `--rate` per second, one pipeline each 10 ms, with
  MAXLEN ~`--window` as the bridge writes.
- Debian's Chromium (headless, through Playwright) opens the page; a PerformanceObserver for
  `longtask` entries (any main-thread task over 50 ms, as Chromium itself reports them) is
  installed before the page's own scripts run. First a calibration: a 150 ms busy loop in the
  page must show up as a long task, or the run is void. Then, for each scenario, the page is
  loaded, waits until live, and is measured for `--seconds`: the long tasks while live (and
  those during loading, apart), and how many events the page counted against how many were
  written meanwhile, whether the feed stayed live (a client too slow is dropped and resumes),
  and the CPU the renderer processes used (user + kernel, from /proc: what the page costs,
  whatever else the machine runs). No requestAnimationFrame loop counts frames: it would itself
  make every frame render.
- Then the same view is traced for as long again (Chromium's own trace, as DevTools records it):
  each main-thread task's wall time and its thread's CPU time. On a machine shared with other
  work, a task long by the wall clock but short in CPU is the kernel running someone else; a task
  long in CPU is the page's own doing. (Tracing costs the page time, so the long-task figures come
  from the untraced period.)
- Scenarios: the default view (100 rows kept), 1,000 rows kept, an event open in the
  detail pane through its permalink (the list paused, charts and counters live), and the
  last-minute view (its charts slide with the clock; node share names the busiest node now).

Prints a Markdown table for BENCHMARKS.md with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
#: What DevTools' performance panel records: every main-thread task with its wall and thread (CPU) time.
TRACE_CATEGORIES = ["toplevel", "devtools.timeline", "disabled-by-default-devtools.timeline"]
NODES = ["10.0.0.21:11434", "10.0.0.22:11434", "10.0.0.23:11434", "10.0.0.24:11434"]
INSTANCES = ["gpu-a_101_aaaa0001", "gpu-b_202_bbbb0002", "laptop_303_cccc0003"]
MODELS = ["llama3.2:3b", "llama3.1:8b", "codellama:13b", "qwen2.5:32b", "llama3.1:70b"]
TYPES = [
    "ROUTE_DECISION", "OLLAMA_NODE_SELECTED", "TASK_QUEUED", "TASK_START", "TASK_COMPLETE", "CACHE_HIT",
    "FALLBACK_TRIGGERED", "RPC_BACKEND_SELECTED", "WORKER_LOAD", "MODEL_SWITCH",
]  # fmt: skip
WEIGHTS = [20, 18, 12, 12, 12, 8, 4, 4, 6, 4]

OBSERVER = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push([entry.startTime, entry.duration]);
}).observe({ type: "longtask", buffered: true });
window.__dropped = 0; // times the feed stopped being live (a client too slow is dropped and resumes)
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("status");
  let live = false;
  new MutationObserver(() => {
    const now = status.textContent.startsWith("live");
    if (live && !now) window.__dropped += 1;
    live = now;
  }).observe(status, { childList: true, characterData: true, subtree: true });
});
"""


def event(rng: random.Random, seq: int) -> bytes:
    kind = rng.choices(TYPES, WEIGHTS)[0]
    fields: dict[str, Any] = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime()),
        "instance_id": rng.choice(INSTANCES),
        "event_type": kind,
        "model": rng.choice(MODELS),
        "backend": "rpc" if kind in ("FALLBACK_TRIGGERED", "RPC_BACKEND_SELECTED") else "ollama",
        "reason": rng.choice(
            ["sufficient_resources", "lowest_latency", "ollama_error: Out of memory", "timeout"]
        ),
        "trace_id": f"{seq // 5:032x}",
    }
    if kind == "OLLAMA_NODE_SELECTED":
        fields["node_url"] = rng.choice(NODES)
    if kind == "RPC_BACKEND_SELECTED":
        fields.update(backend_host="10.0.0.31", backend_port=50052)
    return orjson.dumps(fields)


def prefill(redis_url: str, stream: str, count: int) -> None:
    """`count` events over the last five minutes, with ids at their times."""
    client = redis.Redis.from_url(redis_url)
    rng = random.Random(1)
    start = int(time.time() * 1000) - 300_000
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        pipe.xadd(stream, {"event": event(rng, n)}, id=f"{start + n * 300_000 // count}-{n}")
    pipe.execute()
    client.close()


def writer(redis_url: str, stream: str, rate: int, window: int, stop: Any, written: Any) -> None:
    client = redis.Redis.from_url(redis_url)
    rng = random.Random(2)
    per_tick = max(1, rate // 100)
    seq = 0
    next_tick = time.monotonic()
    while not stop.is_set():
        pipe = client.pipeline(transaction=False)
        for _ in range(per_tick):
            pipe.xadd(stream, {"event": event(rng, seq)}, maxlen=window, approximate=True)
            seq += 1
        pipe.execute()
        written.value = seq
        next_tick += 0.01
        time.sleep(max(0.0, next_tick - time.monotonic()))
    client.close()


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def cpu_model() -> str:
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def renderer_cpu_seconds() -> float:
    """User + kernel CPU of every Chromium renderer process (the page's main thread lives there)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"--type=renderer" not in cmdline.read():
                    continue
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def counted(page: Page, written: Any) -> tuple[int, int]:
    """The page's event count just after it redraws its counters, and the writer's count then."""
    rate = page.locator("#rate")
    before = rate.text_content() or ""
    expect(rate).not_to_have_text(before, timeout=5000)
    text, now_written = rate.text_content() or "", written.value
    found = re.search(r"(\d+) events (?:in range|since)", text)
    assert found is not None, f"no count in {text!r}"
    return int(found.group(1)), now_written


def main_thread_tasks(trace: Path) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) of every task on the page's main thread in a Chromium trace: a task long by
    the wall clock but short in CPU was the kernel running something else, not the page working."""
    data = json.loads(trace.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    return [
        (e["dur"] / 1000, e.get("tdur", e["dur"]) / 1000)
        for e in events
        if e.get("ph") == "X" and e.get("name") == "RunTask" and (e.get("pid"), e.get("tid")) in main
    ]


def measure(page: Page, url: str, seconds: float, written: Any) -> dict[str, Any]:
    """One live period as the PerformanceObserver sees it (no tracing: it costs the page time)."""
    page.goto(url)
    expect(page.locator("#status")).to_have_text(re.compile("^live"), timeout=30_000)
    page.wait_for_timeout(1500)  # the first redraw after live
    loading = page.evaluate("window.__longTasks.length")
    load_tasks = page.evaluate("window.__longTasks.map(t => t[1])")
    start_counted, start_written = counted(page, written)
    dropped = page.evaluate("window.__dropped")
    cpu, started = renderer_cpu_seconds(), time.monotonic()
    page.wait_for_timeout(seconds * 1000)
    cpu = (renderer_cpu_seconds() - cpu) / (time.monotonic() - started)
    end_counted, end_written = counted(page, written)
    live = page.evaluate("window.__longTasks.map(t => t[1])")[loading:]
    return {
        "load_max": max(load_tasks, default=0.0),
        "live_count": len(live),
        "live_over_100": sum(d > 100 for d in live),
        "live_max": max(live, default=0.0),
        "cpu": cpu,
        "counted": end_counted - start_counted,
        "written": end_written - start_written,
        "dropped": page.evaluate("window.__dropped") - dropped,
    }


def traced(page: Page, seconds: float) -> list[tuple[float, float]]:
    """A second live period of the same view under Chromium's tracing: each main-thread task's CPU."""
    browser = page.context.browser
    assert browser is not None
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "trace.json"
        browser.start_tracing(page=page, path=trace, categories=TRACE_CATEGORIES)
        page.wait_for_timeout(seconds * 1000)
        browser.stop_tracing()
        return main_thread_tasks(trace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    args = parser.parse_args()

    stream = f"bench:page:{uuid.uuid4().hex[:8]}"
    prefill(args.redis_url, stream, args.window)
    port = _free_port()
    env = {**os.environ, "SOLLOL_REDIS_URL": args.redis_url, "SOLLOL_ROUTING_STREAM": stream}
    server = subprocess.Popen(
        [sys.executable, "-m", "sollol_otel", "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    stop = multiprocessing.Event()
    written = multiprocessing.Value("q", 0)
    feeder = multiprocessing.Process(
        target=writer, args=(args.redis_url, stream, args.rate, args.window, stop, written)
    )
    try:
        _wait_for(url)
        feeder.start()
        rows = scenarios(url, args, written)
    finally:
        stop.set()
        feeder.join(10)
        server.terminate()
        server.wait(10)
        client = redis.Redis.from_url(args.redis_url)
        client.delete(stream)
        client.close()
    report(rows, args)


def scenarios(url: str, args: argparse.Namespace, written: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """Calibrate the long-task observer, then measure each scenario in one page."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(OBSERVER)
        page = context.new_page()
        page.goto(url + "?limit=100")
        page.evaluate(
            "setTimeout(() => { const end = performance.now() + 150; while (performance.now() < end); })"
        )
        page.wait_for_timeout(1000)
        seen = page.evaluate("window.__longTasks.map(t => t[1])")
        if not any(d >= 140 for d in seen):
            raise SystemExit(f"calibration failed: a 150 ms task was not reported (saw {seen}); no figures")
        newest = httpx.get(url + "api/routing_events", params={"limit": 1}).json()["events"][0]["id"]
        for name, query in (
            ("default view, 100 rows", ""),
            ("1,000 rows kept", "?limit=1000"),
            ("an event open by permalink (list paused)", f"?id={newest}"),
            ("the last minute (charts sliding, busiest node now)", "?since=1m"),
        ):
            before = load_average()
            result = measure(page, url + query, args.seconds, written)
            tasks = traced(page, args.seconds)
            result["over_100_cpu"] = sum(wall > 100 and cpu > 100 for wall, cpu in tasks)
            result["traced_over_100"] = sum(wall > 100 for wall, _ in tasks)
            result["max_cpu"] = max((cpu for _, cpu in tasks), default=0.0)
            rows.append((name, f"{before} → {load_average()}", result))
        browser.close()
    return rows


def report(rows: list[tuple[str, str, dict[str, Any]]], args: argparse.Namespace) -> None:
    print(
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{_chromium_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(
        f"Rate {args.rate} events/s, window {args.window} events, {args.seconds:.0f} s live per scenario.\n"
    )
    print(
        "| scenario | load avg | long tasks while live | over 100 ms | longest | longest while loading "
        "| renderer CPU | events counted / written while live | feed dropped "
        "| traced: tasks over 100 ms wall / of them over 100 ms CPU | traced: most CPU in one task |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, load, r in rows:
        print(
            f"| {name} | {load} | {r['live_count']} | **{r['live_over_100']}** | {r['live_max']:.0f} ms "
            f"| {r['load_max']:.0f} ms | {r['cpu']:.0%} | {r['counted']} / {r['written']} | {r['dropped']} "
            f"| {r['traced_over_100']} / **{r['over_100_cpu']}** | {r['max_cpu']:.0f} ms |"
        )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the dashboard did not come up")


def _chromium_version() -> str:
    return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    main()
