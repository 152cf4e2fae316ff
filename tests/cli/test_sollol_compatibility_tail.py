"""Our viewer reads what SOLLOL 0.9.66 writes, and `python -m sollol_otel.routing_viewer` takes its usages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis
from cli.tail_cli import environment, json_lines, run
from sollol_events import sollol_event, write
from sollol_reference import INSTALLED, MISSING_REASON, load


@pytest.mark.sollol
@pytest.mark.skipif(not INSTALLED, reason=MISSING_REASON)
def test_every_event_sollol_0_9_66_writes_is_shown(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    sollol = load("routing_logger").RoutingEventLogger(
        redis_client=redis.Redis.from_url(environment()["SOLLOL_REDIS_URL"], decode_responses=True),
        channel=keys[1],
        stream_key=keys[0],
    )
    sollol.log_route_decision("llama3.2:3b", "ollama", "sufficient_resources", parameter_count=3)
    sollol.log_route_decision("llama3.2:3b", "ollama", "cached", cached=True)
    sollol.log_fallback("codellama:13b", "ollama", "rpc", "ollama_error: Out of memory")
    sollol.log_coordinator_start("llama3.1:70b", 3, coordinator_host="127.0.0.1", coordinator_port=18080)
    sollol.log_coordinator_stop("llama3.1:70b")
    sollol.log_ollama_node_selected("http://10.0.0.2:11434", "lowest_latency", "llama3.2:3b", confidence=0.9)
    sollol.log_rpc_backend_selected("10.0.0.9", 50052, "round_robin")  # model is null
    sollol.log_model_switch("a", "b", "rpc")
    sollol.log_task_queued("t1", "llama3.2:3b")
    sollol.log_task_start("t1", "llama3.2:3b", "w1")  # adds a perf_counter float
    sollol.log_task_complete("t1", "llama3.2:3b", "w1", 1.5, success=False)
    sollol.log_worker_load("w1", 2, cpu_percent=40.0)  # model and backend null
    result = run("tail", "--history", "100", "--color", "never")
    assert result.returncode == 0
    assert "12 shown, 0 filtered out, 0 skipped as malformed" in result.stderr
    for line in (
        "node: http://10.0.0.2:11434",
        "rpc_backend: 10.0.0.9:50052",
        "from: ollama",
        "result: failed",
        "load: 2 active tasks, cpu 40.0%, memory N/A",
        "model=N/A",
    ):
        assert line in result.stdout


def test_the_other_shapes_sollol_code_publishes_are_shown_or_counted(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(
        redis_client, keys[0],
        {"timestamp": 1795744307.5, "event_type": "rpc_coordinator_route", "rpc_backends": ["a:1", "b:2"]},
        {"event": "node_down", "node": "10.0.0.1"},
    )  # fmt: skip
    redis_client.xadd(keys[0], {"event": b"\xff\xfe not utf-8"})
    result = run("tail", "--history", "10", "--color", "never")
    assert "rpc_coordinator_route" in result.stdout and "rpc_backends: 2 (a:1, b:2)" in result.stdout
    assert "node_down" in result.stdout
    assert "2 shown, 0 filtered out, 1 skipped as malformed" in result.stderr


def test_routing_viewer_module_takes_the_seeds_usages(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(
        redis_client, keys[0],
        sollol_event(), sollol_event(model="llama3.1:70b", backend="rpc"),
        sollol_event(instance_id="hostname_1234_abcd1234", event_type="CACHE_HIT"),
    )  # fmt: skip
    viewer = [sys.executable, "-m", "sollol_otel.routing_viewer", "--history", "100", "-o", "json"]
    for extra, expected in (
        ([], 3),
        (["--model", "llama3.2:3b"], 2),
        (["--backend", "rpc"], 1),
        (["--event-type", "ROUTE_DECISION"], 2),
        (["--instance", "hostname_1234_abcd1234"], 1),
    ):
        result = subprocess.run(
            [*viewer, *extra], capture_output=True, text=True, env=environment(), check=True
        )
        assert len(json_lines(result.stdout)) == expected, extra
    assert json.loads(result.stdout)["instance_id"] == "hostname_1234_abcd1234"
