"""Opt-in dashboard autostart: SOLLOL's "the dashboard starts with HybridRouter", made safe.

With `SOLLOL_DASHBOARD_AUTOSTART=true`, instrumenting SOLLOL starts `sollol-otel dashboard` in a
process of its own, unless something already answers on the dashboard's port (another router
started it, or the operator runs one). The check and the start happen on a background thread:
the router never waits for them, and nothing that goes wrong there reaches it. The dashboard
outlives the router that started it, so every router on the machine shares one; its output goes
to `sollol-otel-dashboard-<port>.log` in the temporary directory.

| variable | default | meaning |
|---|---|---|
| SOLLOL_DASHBOARD_AUTOSTART | false | true starts the dashboard when instrumenting |
| SOLLOL_DASHBOARD_HOST | 127.0.0.1 | where it listens (and where we look for one) |
| SOLLOL_DASHBOARD_PORT | 8080 | its port (SOLLOL's variable) |
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path

from sollol_otel import settings
from sollol_otel.access import answers
from sollol_otel.settings import SettingsError

_log = logging.getLogger(__name__)

DEFAULT_HOST = settings.DASHBOARD_HOST.default
DEFAULT_PORT = settings.DASHBOARD_PORT.default


def dashboard_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "sollol_otel", "dashboard", "--host", host, "--port", str(port)]


def log_path(port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"sollol-otel-dashboard-{port}.log"


def start_dashboard_if_absent(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, command: Sequence[str] | None = None
) -> subprocess.Popen[bytes] | None:
    """Start the dashboard (or `command`) detached unless something answers on host:port."""
    if answers((host, port)):
        _log.debug("sollol-otel: something answers on %s:%d; not starting a dashboard", host, port)
        return None
    with log_path(port).open("ab") as output:
        process = subprocess.Popen(
            list(command or dashboard_command(host, port)),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed with the router's process group, not sent its Ctrl-C
        )
    _log.info(
        "sollol-otel: started the dashboard on http://%s:%d (pid %d, log %s)",
        host,
        port,
        process.pid,
        output.name,
    )
    return process


def _wanted(environ: Mapping[str, str] | None) -> tuple[str, int] | None:
    if not settings.DASHBOARD_AUTOSTART.read(environ):
        return None
    return settings.DASHBOARD_HOST.read(environ), settings.DASHBOARD_PORT.read(environ)


def start_dashboard_if_wanted(
    environ: Mapping[str, str] | None = None, command: Sequence[str] | None = None
) -> Future[subprocess.Popen[bytes] | None] | None:
    """When the environment asks for it, check for and start the dashboard on a daemon thread.

    Returns a future of the started process (None when something already answered), or None
    when autostart is off. Never raises, and never waits: failures end up in the log.
    """
    try:
        wanted = _wanted(environ)
    except SettingsError as error:
        _log.warning("sollol-otel: dashboard autostart skipped: %s", error)
        return None
    if wanted is None:
        return None
    started: Future[subprocess.Popen[bytes] | None] = Future()

    def run() -> None:
        try:
            started.set_result(start_dashboard_if_absent(*wanted, command=command))
        except Exception as error:
            _log.warning("sollol-otel: could not start the dashboard on %s:%d", *wanted, exc_info=True)
            started.set_exception(error)

    threading.Thread(target=run, name="sollol-otel-dashboard-autostart", daemon=True).start()
    return started
