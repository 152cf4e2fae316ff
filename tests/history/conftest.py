"""Fixtures of the history tests: a stream and a history folder of their own."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def stream(keys: tuple[str, str]) -> str:
    """The test's stream; `keys` removes it and its lease after."""
    return keys[0]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """SOLLOL_HISTORY_DIR of the test."""
    return tmp_path / "history"
