"""This process's identity on the wire: SOLLOL's `hostname_pid_8hex` instance id."""

from __future__ import annotations

import os
import socket
import uuid

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
