"""How the package reports its own trouble: said once, clearly, with what happened since.

A component that fails over and over (Redis away, a hostile argument on every call, an
extractor that raises) must not write one log line per event, nor go silent after the first.
`Trouble` says each kind of trouble once when it starts and once when it ends, and each of
those lines carries how many events were affected since the previous one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol


class Trouble:
    """One component's trouble: each state logged once until `clear()`, with counts in between.

    `report(state, ...)` logs when `state` (a short name such as "unreachable") has not been
    reported since the last `clear()`; repeats are logged at `repeat_level` only. `count(n)`
    adds to what the next line says happened meanwhile ("120 routing events dropped since").
    Safe to call from any thread.
    """

    def __init__(self, logger: logging.Logger, *, unit: str = "events affected") -> None:
        self._logger = logger
        self._unit = unit
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._state: str | None = None
        self._since = 0

    @property
    def state(self) -> str | None:
        """The last state reported, None when all is well."""
        return self._state

    def count(self, n: int = 1) -> None:
        if n:
            with self._lock:
                self._since += n

    def report(
        self,
        state: str,
        message: str,
        *args: object,
        level: int = logging.WARNING,
        repeat_level: int | None = None,
        exc_info: bool = False,
    ) -> bool:
        """`state` holds now; logged (True) when it is new since the last `clear()`."""
        with self._lock:
            new = state not in self._reported
            self._reported.add(state)
            self._state = state
            since = self._take_since() if new else ""
        if new:
            self._logger.log(level, message + since, *args, exc_info=exc_info)
        elif repeat_level is not None:
            self._logger.log(repeat_level, message, *args, exc_info=exc_info)
        return new

    def clear(self, message: str, *args: object, level: int = logging.WARNING) -> bool:
        """All is well again; logged (True) when some trouble had been reported."""
        with self._lock:
            troubled = self._state is not None
            self._reported.clear()
            self._state = None
            since = self._take_since()
        if troubled:
            self._logger.log(level, message + since, *args)
        return troubled

    def _take_since(self) -> str:
        since, self._since = self._since, 0
        return f" ({since} {self._unit} since the last report)" if since else ""


class Component(Protocol):
    """A part of a server that reports its state on /healthz without deciding the status code
    (a history indexer behind, say): `status()` returns a JSON-ready mapping, `state` first."""

    def status(self) -> dict[str, Any]: ...


def health(
    state: str,
    reason: str | None,
    components: Mapping[str, Component] | None = None,
    **details: Any,
) -> tuple[int, dict[str, Any]]:
    """A /healthz answer: 200 only when the live path's `state` is "ok", else 503; `reason` says
    why, and each component's report is in the body under `components` (a component whose report
    fails is shown so, the check unchanged)."""
    reports: dict[str, Any] = {}
    for name, component in (components or {}).items():
        try:
            reports[name] = component.status()
        except Exception as error:  # a broken report must not break the health check
            reports[name] = {"state": "error", "reason": f"status() raised {type(error).__name__}"}
    ok = state == "ok"
    body = {"status": "ok" if ok else "unavailable", "state": state, "reason": reason, **details}
    if reports:
        body["components"] = reports
    return (200 if ok else 503), body
