"""`sollol-otel demo`: zero setup. Redis (embedded where none runs), the dashboard, and a
simulated three-instance SOLLOL cluster recording through the real pipeline.

Simulated events never land in a stream someone else relies on: into a Redis the demo did not
start it writes only its own keys (DEMO_STREAM, DEMO_CHANNEL), unless `--redis-url` names the
Redis to write to, configured keys and all. The banner says which it did, and what becomes of
the stream on exit: one the demo created in a Redis it did not start is removed (`--keep`
keeps it); one that was there before stays.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.text import Text

from sollol_otel import access
from sollol_otel.demo import embedded_redis
from sollol_otel.redis.client import CONNECTION_ERRORS, sync_client
from sollol_otel.redis.urls import redact_url
from sollol_otel.settings import REDIS_URL, ROUTING_STREAM, Settings
from sollol_otel.web import DashboardConfig, serve

INSTANCES = 3
#: The keys the demo writes to in a Redis it did not start (and was not pointed at).
DEMO_STREAM = "sollol:demo:routing_stream"
DEMO_CHANNEL = "sollol:demo:routing_events"


class NoRedis(Exception):
    """The Redis the demo was told to use does not answer."""


@dataclass
class Target:
    """Where the demo writes, and what becomes of its stream when it stops."""

    settings: Settings
    #: The embedded Redis the demo started (its events end with it), or None for someone else's.
    embedded: embedded_redis.EmbeddedRedis | None = None
    #: The stream did not exist before the demo wrote to it.
    created: bool = False
    keep: bool = False

    @property
    def where(self) -> str:
        return f"{self.settings.stream} at {redact_url(self.settings.redis_url)}"

    def fate(self) -> str:
        """What happens to the stream on exit, said in the banner."""
        if self.embedded is not None:
            if self.embedded.owner:
                return "the embedded Redis stops and its events go with it (nothing is kept on disk)"
            return "the events stay in the other demo's embedded Redis until that demo stops"
        if not self.created:
            return f"{self.where} existed before the demo, so it stays, simulated events included"
        if self.keep:
            return f"{self.where} stays (--keep)"
        return f"{self.where} is removed (--keep keeps it)"

    def leave(self) -> str:
        """On exit: remove the stream when the demo made it in someone else's Redis (unless --keep);
        what became of it."""
        if self.embedded is not None:
            if self.embedded.owner:
                return "The embedded Redis stopped; its events went with it."
            return "The events stay in the other demo's embedded Redis until that demo stops."
        if not self.created or self.keep:
            return f"{self.where} stays{' (--keep)' if self.created else ': it was there before the demo'}."
        try:
            client = sync_client(self.settings.redis_url)
            try:
                client.delete(self.settings.stream)
            finally:
                client.close()
        except CONNECTION_ERRORS as exc:
            return f"{self.where} stays: it could not be removed ({type(exc).__name__})."
        return f"Removed the demo's stream {self.where} (--keep keeps it)."


def _stream_exists(settings: Settings) -> bool:
    client = sync_client(settings.redis_url)
    try:
        return bool(client.exists(settings.stream))
    finally:
        client.close()


@contextmanager
def _redis(settings: Settings, redis_url: str | None, console: Console, keep: bool) -> Iterator[Target]:
    """The Redis the demo writes to, and with which keys, said on the console; on exit, the
    stream is removed when the demo created it in a Redis it did not start (unless `keep`)."""
    if redis_url is not None:
        settings = settings.with_overrides(redis_url=redis_url)
        if not access.redis_answers(settings.redis_url):
            raise NoRedis(f"No Redis answers at {redact_url(settings.redis_url)} (--redis-url).")
        where = redact_url(settings.redis_url)
        console.print(f"Writing simulated events into {settings.stream} at {where} (--redis-url).")
    elif access.redis_answers(settings.redis_url):
        console.print(
            f"A Redis the demo did not start answers at {redact_url(settings.redis_url)}: simulated "
            f"events go to the demo's own stream {DEMO_STREAM}, never to {settings.stream} "
            "(--redis-url writes there)."
        )
        settings = settings.with_overrides(stream=DEMO_STREAM, channel=DEMO_CHANNEL)
    else:
        server = embedded_redis.start(settings.redis_url)
        how = "started an embedded" if server.owner else "reusing the running demo's embedded"
        console.print(
            f"No Redis answers at {redact_url(settings.redis_url)}: {how} redis-server on {server.url} "
            f"(state in {embedded_redis.state_dir()})"
        )
        target = Target(settings.with_overrides(redis_url=server.url), embedded=server)
        try:
            yield target
        finally:
            server.stop()
            console.print(target.leave())
        return
    target = Target(settings, created=not _stream_exists(settings), keep=keep)
    try:
        yield target
    finally:
        console.print(target.leave())


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


def _instructions(target: Target, host: str, port: int) -> Text:
    """Printed unwrapped, so every command can be copied whole from any terminal width."""
    settings = target.settings
    tail = f"{command()} tail"
    if settings.redis_url != REDIS_URL.default:
        tail += f" --redis-url {redact_url(settings.redis_url)}"
    if settings.stream != ROUTING_STREAM.default:
        tail += f" --stream {shlex.quote(settings.stream)}"
    text = Text(no_wrap=True, overflow="ignore")
    text.append(
        f"\n{INSTANCES} simulated SOLLOL instances are routing requests; every decision goes into the "
        f"Redis stream {target.where}.\nLook at them:\n"
    )
    for label, value, style in (
        ("in a browser:", f"http://{host}:{port}", "cyan underline"),
        ("in a terminal:", f"{tail} --history 20 --follow", "green"),
        ("one line each:", f"{tail} -o line", "green"),
        ("a request's chain:", f"{tail} --history 50 --trace-id TRACE_ID", "green"),
    ):
        text.append(f"  {label:<19}", style="bold")
        text.append(value + "\n", style=style)
    text.append("  (TRACE_ID: the trace of any event, in the terminal or the page)\n")
    text.append(f"Ctrl+C stops everything; then {target.fate()}.\n")
    return text


def run(
    host: str, port: int, rate: float, out: TextIO, redis_url: str | None = None, *, keep: bool = False
) -> bool:
    """Runs the demo until Ctrl+C; False when it could not start for want of a Redis (said on `out`)."""
    console = Console(file=out, highlight=False, soft_wrap=True)
    try:
        config = DashboardConfig.from_env()
        with _redis(Settings.from_env(), redis_url, console, keep) as target, _cluster(target.settings, rate):
            console.print(_instructions(target, host, port))
            with tempfile.TemporaryDirectory(prefix="sollol-otel-demo-history-") as history:
                serve(
                    target.settings,
                    config,
                    host=host,
                    port=port,
                    log_level="warning",
                    history_dir=Path(history),
                )
    except (embedded_redis.EmbeddedRedisError, NoRedis) as exc:
        console.print(f"[red]{exc}[/]")
        return False
    except KeyboardInterrupt:
        pass
    console.print("Demo stopped.")
    return True
