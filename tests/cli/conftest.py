"""Fixtures for the terminal viewer's tests: background commands that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cli.tail_cli import Running


@pytest.fixture
def start(keys: tuple[str, str]) -> Iterator[Callable[..., Running]]:
    """Starts `sollol-otel <args>` in the background (after `keys` set the environment)."""
    started: list[Running] = []

    def _start(*args: str, **kwargs: object) -> Running:
        running = Running(*args, **kwargs)  # type: ignore[arg-type]
        started.append(running)
        return running

    yield _start
    for running in started:
        running.close()
