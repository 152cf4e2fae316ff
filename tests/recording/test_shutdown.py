"""One bound for the whole shutdown, OTLP exporters included, and one line for what was lost.

The bounds checked here are generous (seconds over the timeout, against the 20-40 s an OTLP
endpoint that never answers used to cost); the exact figures are in BENCHMARKS.md.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

import sollol_otel
from sollol_otel import RoutingLogger

from .conftest import balanced

Recording = Callable[..., RoutingLogger]

RECORD_IN_SPANS = """
import logging, sys, time
logging.basicConfig(format="%(name)s: %(message)s")
from opentelemetry import trace
import sollol_otel
logger = sollol_otel.get_routing_logger()
for i in range(20):
    with trace.get_tracer("router").start_as_current_span("request"):
        logger.log_route_decision(f"m-{i}", "ollama", "r")
print("recorded", time.monotonic(), flush=True)
"""


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An OTLP endpoint that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def run(script: str, endpoint: str, *, environment: dict[str, str] | None = None) -> tuple[float, str]:
    """Run `script` with OTLP export to `endpoint`: seconds from its "recorded" line to its exit, stderr."""
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **(environment or {})}
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    recorded = float(process.stdout.readline().split()[1])
    _, stderr = process.communicate(timeout=60)
    return time.monotonic() - recorded, stderr


def test_shutdown_keeps_to_its_timeout_when_the_otlp_endpoint_never_answers(
    keys: tuple[str, str], silent_endpoint: str
) -> None:
    seconds, stderr = run(RECORD_IN_SPANS + "sollol_otel.shutdown(1.0)\n", silent_endpoint)
    assert seconds < 1.0 + 3.0  # 20-25 s before the bound
    assert stderr.count("did not finish within the 1.0 s shutdown timeout") == 1
    assert stderr.count("opentelemetry.exporter") <= 3, stderr  # no pages of retry logs


def test_interpreter_exit_keeps_to_the_shutdown_timeout_when_the_otlp_endpoint_never_answers(
    keys: tuple[str, str], silent_endpoint: str
) -> None:
    seconds, stderr = run(
        RECORD_IN_SPANS, silent_endpoint, environment={"SOLLOL_ROUTING_SHUTDOWN_TIMEOUT": "1"}
    )
    assert seconds < 1.0 + 4.0  # 25-40 s before the bound
    assert stderr.count("did not finish within the 1.0 s shutdown timeout") == 1


def test_what_shutdown_could_not_deliver_is_said_once_with_the_reason(
    recording: Recording, keys: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    logger = recording(redis_url="redis://127.0.0.1:1")
    for _ in range(3):
        logger.log_route_decision("m", "ollama", "r")
    with caplog.at_level(logging.WARNING, logger="sollol_otel.recording.pipeline"):
        sollol_otel.shutdown(timeout=0.5)
    (said,) = [r.getMessage() for r in caplog.records if r.name == "sollol_otel.recording.pipeline"]
    assert said.startswith("3 routing events not delivered: Redis at redis://127.0.0.1:1 unreachable (")
    stats = sollol_otel.bridge_stats()  # the final ledger stays readable
    assert (stats.state, stats.recorded, stats.dropped_by) == ("stopped", 3, {"not delivered at shutdown": 3})
    assert balanced(stats)
