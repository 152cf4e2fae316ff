"""`sollol-otel demo`: zero setup. Redis (embedded where none runs), the dashboard, and a
simulated three-instance SOLLOL cluster recording through the real pipeline.

Simulated events never land in a stream someone else relies on: into a Redis the demo did not
start it writes only its own keys (DEMO_STREAM, DEMO_CHANNEL), unless `--redis-url` names the
Redis to write to, configured keys and all. The banner says which it did.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.text import Text

from sollol_otel import access
from sollol_otel.demo import embedded_redis
from sollol_otel.redis.urls import redact_url
from sollol_otel.settings import REDIS_URL, ROUTING_STREAM, Settings
from sollol_otel.web import DashboardConfig, serve

INSTANCES = 3
#: The keys the demo writes to in a Redis it did not start (and was not pointed at).
DEMO_STREAM = "sollol:demo:routing_stream"
DEMO_CHANNEL = "sollol:demo:routing_events"


class NoRedis(Exception):
    """The Redis the demo was told to use does not answer."""


@contextmanager
def _redis(settings: Settings, redis_url: str | None, console: Console) -> Iterator[Settings]:
    """The Redis the demo writes to, and with which keys, said on the console."""
    if redis_url is not None:
        settings = settings.with_overrides(redis_url=redis_url)
        if not access.redis_answers(settings.redis_url):
            raise NoRedis(f"No Redis answers at {redact_url(settings.redis_url)} (--redis-url).")
        where = redact_url(settings.redis_url)
        console.print(f"Writing simulated events into {settings.stream} at {where} (--redis-url).")
        yield settings
        return
    if access.redis_answers(settings.redis_url):
        console.print(
            f"A Redis the demo did not start answers at {redact_url(settings.redis_url)}: simulated "
            f"events go to the demo's own stream {DEMO_STREAM}, never to {settings.stream} "
            "(--redis-url writes there)."
        )
        yield settings.with_overrides(stream=DEMO_STREAM, channel=DEMO_CHANNEL)
        return
    server = embedded_redis.start(settings.redis_url)
    how = "started an embedded" if server.owner else "reusing the running demo's embedded"
    console.print(
        f"No Redis answers at {redact_url(settings.redis_url)}: {how} redis-server on {server.url} "
        f"(state in {embedded_redis.state_dir()})"
    )
    try:
        yield settings.with_overrides(redis_url=server.url)
    finally:
        server.stop()


@contextmanager
def _cluster(settings: Settings, rate: float) -> Iterator[list[subprocess.Popen[bytes]]]:
    """One process per simulated instance, so each has its own instance id, as on a real network."""
    env = {
        **os.environ,
        "SOLLOL_REDIS_URL": settings.redis_url,
        "SOLLOL_ROUTING_STREAM": settings.stream,
        "SOLLOL_ROUTING_CHANNEL": settings.channel,
    }
    instances = [
        subprocess.Popen(
            [sys.executable, "-m", "sollol_otel.demo.simulation", "--rate", str(rate), "--seed", str(seed)],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl+C reaches the demo, which stops the instances in order
            preexec_fn=embedded_redis.die_with_parent,  # noqa: PLW1509
        )
        for seed in range(INSTANCES)
    ]
    try:
        yield instances
    finally:
        for instance in instances:
            instance.terminate()
        for instance in instances:
            try:
                instance.wait(10)
            except subprocess.TimeoutExpired:
                instance.kill()
                instance.wait(5)


def command() -> str:
    """How to run `sollol-otel` from any shell: the full path when no virtualenv is active."""
    script = Path(sys.executable).with_name("sollol-otel")
    if shutil.which("sollol-otel") == str(script):
        return "sollol-otel"
    return shlex.quote(str(script)) if script.exists() else f"{shlex.quote(sys.executable)} -m sollol_otel"


def _instructions(settings: Settings, host: str, port: int) -> Text:
    """Printed unwrapped, so both lines can be copied whole from any terminal width."""
    tail = f"{command()} tail --history 20 --follow"
    if settings.redis_url != REDIS_URL.default:
        tail += f" --redis-url {redact_url(settings.redis_url)}"
    if settings.stream != ROUTING_STREAM.default:
        tail = f"{ROUTING_STREAM.name}={shlex.quote(settings.stream)} {tail}"
    text = Text(no_wrap=True, overflow="ignore")
    text.append(f"\n{INSTANCES} simulated SOLLOL instances are routing requests.\n")
    text.append("  Dashboard: ", style="bold")
    text.append(f"http://{host}:{port}\n", style="cyan underline")
    text.append("  Terminal:  ", style="bold")
    text.append(tail + "\n", style="green")
    text.append("Ctrl+C stops everything.\n")
    return text


def run(host: str, port: int, rate: float, out: TextIO, redis_url: str | None = None) -> bool:
    """Runs the demo until Ctrl+C; False when it could not start for want of a Redis (said on `out`)."""
    console = Console(file=out, highlight=False, soft_wrap=True)
    try:
        settings = Settings.from_env()
        config = DashboardConfig.from_env()
        with _redis(settings, redis_url, console) as settings, _cluster(settings, rate):
            console.print(_instructions(settings, host, port))
            with tempfile.TemporaryDirectory(prefix="sollol-otel-demo-history-") as history:
                serve(settings, config, host=host, port=port, log_level="warning", history_dir=Path(history))
    except (embedded_redis.EmbeddedRedisError, NoRedis) as exc:
        console.print(f"[red]{exc}[/]")
        return False
    except KeyboardInterrupt:
        pass
    console.print("Demo stopped.")
    return True
