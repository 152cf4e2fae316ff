"""The decorated router in examples/ runs and records what its comments promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import Pipeline

EXAMPLE = Path(__file__).parents[2] / "examples" / "decorated_router.py"


def test_the_example_router_records_its_decisions_and_its_failure(pipeline: Pipeline) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert [e["event_type"] for e in pipeline.events(6)] == [
        "ROUTE_DECISION", "OLLAMA_NODE_SELECTED",
        "ROUTE_DECISION", "OLLAMA_NODE_SELECTED", "FALLBACK_TRIGGERED",
        "ROUTE_DECISION",
    ]  # fmt: skip
