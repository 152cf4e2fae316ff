"""Fixtures of the history tests: a stream of their own, its lease keys removed after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from history.harness import clean_lease


@pytest.fixture
def stream(keys: tuple[str, str], redis_client: redis.Redis) -> Iterator[str]:
    yield keys[0]
    clean_lease(redis_client, keys[0])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """SOLLOL_HISTORY_DIR of the test."""
    return tmp_path / "history"
