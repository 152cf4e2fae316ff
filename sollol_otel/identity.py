"""Who is writing: SOLLOL's `hostname_pid_8hex` instance id, the host, and our own version."""

from __future__ import annotations

import functools
import os
import socket
import uuid
from importlib.metadata import PackageNotFoundError, version

_instance: tuple[int, str] | None = None


def hostname() -> str:
    return socket.gethostname()


def instance_id() -> str:
    """Stable for the life of the process; a forked child gets its own."""
    global _instance
    pid = os.getpid()
    if _instance is None or _instance[0] != pid:
        _instance = (pid, f"{hostname()}_{pid}_{uuid.uuid4().hex[:8]}")
    return _instance[1]


@functools.cache
def package_version() -> str:
    """Our distribution's version, for instrumentation scopes and /api/stats ("0" when not installed)."""
    try:
        return version("sollol-otel")
    except PackageNotFoundError:
        return "0"
