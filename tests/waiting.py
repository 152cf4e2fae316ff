"""The one bounded wait for tests: poll a condition until it holds or the time is up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Generous: the suite shares two cores with other runs; a passing test never waits this long.
DEFAULT_TIMEOUT = 10.0


def eventually(
    condition: Callable[[], T], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.02, what: str = ""
) -> T:
    """The first truthy value of `condition()`; AssertionError naming `what` if none came in time."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition!r}")
        time.sleep(interval)
