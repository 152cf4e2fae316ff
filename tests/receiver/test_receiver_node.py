"""The official OpenTelemetry SDK of another language (Node.js) sending through collector/README.md's
recipe: every decision lands once, whatever the SDK's clocks and millisecond timestamps do."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from receiver.receiver_harness import RunningReceiver

StreamEvents = Callable[[], list[dict[str, Any]]]
SENDER = Path(__file__).parent / "node_sender"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: the Node.js SDK cannot run")


def send(receiver: RunningReceiver, scenario: str) -> dict[str, str]:
    """Run the Node router's scenario against the receiver; its span's ids once all is exported."""
    assert (SENDER / "node_modules").is_dir(), f"run `npm ci --prefix {SENDER}` (scripts/test.sh does)"
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(SENDER / "send.mjs"), receiver.url, scenario],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    receiver.flush()
    ids: dict[str, str] = json.loads(done.stdout)
    return ids


def test_five_decisions_for_different_models_in_one_span_all_land_once(
    receiver: RunningReceiver, stream_events: StreamEvents
) -> None:
    ids = send(receiver, "five-models")

    events = stream_events()
    assert sorted(event["model"] for event in events) == sorted(
        ["llama3.2:3b", "qwen2.5:7b", "mistral:7b", "phi3:mini", "gemma2:9b"]
    )
    assert {(event["trace_id"], event["span_id"]) for event in events} == {(ids["traceId"], ids["spanId"])}
    assert receiver.counted("sollol_receiver_events_total", signal="traces", outcome="duplicate") == 5


def test_a_log_record_and_its_span_event_twin_land_once(
    receiver: RunningReceiver, stream_events: StreamEvents
) -> None:
    send(receiver, "twin")

    [event] = stream_events()
    assert event["event_type"] == "ROUTE_DECISION" and event["reason"] == "lowest_latency (15ms)"
    assert (event["instance_id"], event["service"]) == ("node-host_4242_0a1b2c3d", "node-router")
    assert event["message"] == "🎯 llama3.2:3b → ollama | lowest_latency (15ms)"
