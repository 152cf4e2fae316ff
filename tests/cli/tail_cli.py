"""Running the real `sollol-otel` command as a subprocess, and writing events the way SOLLOL does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from waiting import eventually

COMMAND = [sys.executable, "-m", "sollol_otel"]


def environment(**extra: str) -> dict[str, str]:
    """This process's environment (with the test's keys), fixed time zone, no inherited colour hints."""
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR", "COLUMNS"}}
    return {**env, "TZ": "UTC", **extra}


def clock_ahead(offset: str) -> dict[str, str]:
    """The environment with the command's own clock moved by `offset` (libfaketime, e.g. "+1d"),
    as on a reader host whose clock is off; Redis's clock stays true. Skips without libfaketime."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not found:
        pytest.skip("libfaketime is not installed (Debian's faketime package; scripts/test.sh installs it)")
    return environment(LD_PRELOAD=str(found[0]), FAKETIME=offset, DONT_FAKE_MONOTONIC="1")


def run(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=dict(env or environment()),
        timeout=timeout,
        check=False,
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


class Running:
    """A command running in the background, its stdout and stderr lines collected as they come."""

    def __init__(
        self, *args: str, env: Mapping[str, str] | None = None, command: Sequence[str] = COMMAND
    ) -> None:
        self.process = subprocess.Popen(
            [*command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=dict(env or environment()),
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(pipe, lines), daemon=True)
            for pipe, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _collect(self, pipe: Any, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line.rstrip("\n"))

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20) -> None:
        try:
            eventually(condition, timeout)
        except AssertionError:
            raise AssertionError(f"timed out; stdout={self.stdout[-5:]!r} stderr={self.stderr!r}") from None

    def stderr_has(self, text: str) -> bool:
        return any(text in line for line in self.stderr)

    def json_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.stdout)]

    def exit_code(self, timeout: float = 20) -> int:
        """Waits for the end; the exit code once all its output is read."""
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def interrupt(self) -> int:
        """Ctrl+C, as an operator stops it."""
        self.process.send_signal(signal.SIGINT)
        return self.exit_code(5)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
