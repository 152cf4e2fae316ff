"""A server command (`sollol-otel dashboard`, `collector`) run as users run it: a real process."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis_servers import free_port
from waiting import eventually

from sollol_otel.access import answers


class ServerProcess:
    """The command's process, its port, and everything it wrote to stderr so far."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, stderr: Path) -> None:
        self.process = process
        self.port = port
        self._stderr = stderr
        self._final: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return self._final if self._final is not None else self._stderr.read_text(errors="replace")

    def stopped(self) -> None:
        self._final = self.stderr


def end(process: subprocess.Popen[bytes], stop: signal.Signals) -> None:
    """Send `stop`; kill the process if it has not exited 15 s later."""
    process.send_signal(stop)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextmanager
def server_process(
    *args: str, env: dict[str, str] | None = None, open_files: int | None = None
) -> Iterator[ServerProcess]:
    """`sollol-otel <args> --port <free port>`, stopped with Ctrl+C after the block; `open_files`
    sets its `ulimit -n` (soft and hard)."""

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    port = free_port()
    environ = {**os.environ, **(env or {})}
    with tempfile.TemporaryDirectory() as directory:
        stderr = Path(directory) / "stderr"
        with stderr.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "sollol_otel", *args, "--port", str(port)],
                env=environ,
                stdout=sink,
                stderr=sink,
                preexec_fn=limit_files,  # noqa: PLW1509 (no threads are started before it runs)
            )
        running = ServerProcess(process, port, stderr)
        try:

            def started() -> bool:
                assert process.poll() is None, f"{args[0]} exited:\n{running.stderr}"
                return answers(("127.0.0.1", port), timeout=0.2)

            eventually(started, timeout=20, what=f"{args[0]} to listen")
            yield running
        finally:
            end(process, signal.SIGINT)
            running.stopped()


HALF_SENT = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Never: finished"


@contextmanager
def held_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """An attacker on loopback: `count` connections, every other one with a request head that
    never ends, the rest silent; connections the server refuses or closes are simply lost."""
    held: list[socket.socket] = []
    try:
        for n in range(count):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                if n % 2:
                    sock.sendall(HALF_SENT)
            except OSError:
                continue
            held.append(sock)
        yield held
    finally:
        for sock in held:
            sock.close()
