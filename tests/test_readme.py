"""The README's Python blocks run as pasted, and their decisions land in Redis."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{n}" for n in range(len(BLOCKS))])
def test_a_readme_python_block_runs_as_pasted(
    block: str, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", block], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    if "log_" in block or "record_decision" in block:
        assert redis_client.xlen(keys[0]) > 0, "the block's decisions did not reach the stream"
