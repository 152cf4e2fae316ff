"""A process forked after first use (gunicorn --preload, multiprocessing's fork) records like any other."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from typing import Any

import redis
from redis_servers import RedisServer
from waiting import eventually

import sollol_otel
from sollol_otel import RoutingLogger

from .conftest import balanced, raw_stream

Recording = Callable[..., RoutingLogger]


def in_child(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `work` in a child made by os.fork(); what it returns (or raised) comes back as JSON."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        os.close(read_end)
        try:
            outcome = work()
        except BaseException as error:  # reported to the parent, which fails the test
            outcome = {"error": repr(error)}
        with os.fdopen(write_end, "w") as out:
            json.dump(outcome, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as results:
        outcome: dict[str, Any] = json.loads(results.read() or '{"error": "no answer"}')
    os.waitpid(pid, 0)
    assert "error" not in outcome, outcome["error"]
    return outcome


def ledger() -> dict[str, Any]:
    stats = sollol_otel.bridge_stats()
    return {
        "recorded": stats.recorded,
        "exported": stats.exported,
        "backlog": stats.backlog,
        "ok": balanced(stats),
    }


def test_a_forked_child_records_with_threads_of_its_own_and_a_ledger_of_its_own(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    logger = recording()
    logger.log_route_decision("parent", "ollama", "r")
    assert sollol_otel.force_flush(5.0)

    def child() -> dict[str, Any]:
        before = ledger()
        sollol_otel.get_routing_logger().log_route_decision("child", "ollama", "r")
        return {
            "before": before,
            "flushed": sollol_otel.force_flush(10.0),
            "after": ledger(),
            "pid": os.getpid(),
        }

    outcome = in_child(child)
    assert outcome["before"] == {"recorded": 0, "exported": 0, "backlog": 0, "ok": True}
    assert outcome["flushed"]
    assert outcome["after"] == {"recorded": 1, "exported": 1, "backlog": 0, "ok": True}
    parent, child_event = raw_stream(redis_client, keys[0])
    assert (parent["model"], child_event["model"]) == ("parent", "child")
    assert child_event["pid"] == outcome["pid"] != parent["pid"]
    assert child_event["instance_id"] != parent["instance_id"]
    assert child_event["event_id"] != parent["event_id"]
    assert sollol_otel.bridge_stats().recorded == 1  # the parent's ledger is the parent's


def test_what_the_parent_queued_before_the_fork_is_delivered_by_the_parent_only(
    recording: Recording, keys: tuple[str, str], private_redis: RedisServer
) -> None:
    logger = recording(redis_url=private_redis.url)
    logger.log_route_decision("before the hang", "ollama", "r")
    assert sollol_otel.force_flush(5.0)
    private_redis.hang()
    for i in range(5):
        logger.log_route_decision(f"queued-{i}", "ollama", "r")
    eventually(lambda: sollol_otel.bridge_stats().state == "unreachable")

    def child() -> dict[str, Any]:
        return {"ledger": ledger(), "nothing to flush": sollol_otel.force_flush(0.5)}

    outcome = in_child(child)
    assert outcome == {
        "ledger": {"recorded": 0, "exported": 0, "backlog": 0, "ok": True},
        "nothing to flush": True,
    }
    private_redis.resume()
    assert sollol_otel.force_flush(15.0)
    client = redis.Redis.from_url(private_redis.url)
    models = [event["model"] for event in raw_stream(client, keys[0])]
    client.close()
    assert models == ["before the hang"] + [f"queued-{i}" for i in range(5)]
    stats = sollol_otel.bridge_stats()
    assert (stats.recorded, stats.exported, stats.dropped) == (6, 6, 0) and balanced(stats)


def record_in_worker(n: int) -> int:
    sollol_otel.get_routing_logger().log_route_decision(f"task-{n}", "ollama", "r")
    return os.getpid()


def test_workers_of_a_multiprocessing_fork_pool_deliver_their_events(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    recording().log_route_decision("parent", "ollama", "r")  # first use before the pool forks
    assert sollol_otel.force_flush(5.0)
    pool = multiprocessing.get_context("fork").Pool(2)
    worker_pids = set(pool.map(record_in_worker, range(20), chunksize=1))
    pool.close()
    pool.join()  # workers end with os._exit: their multiprocessing finalizers deliver
    events = raw_stream(redis_client, keys[0])
    assert sorted(e["model"] for e in events) == sorted(["parent", *(f"task-{n}" for n in range(20))])
    assert {e["pid"] for e in events if e["model"] != "parent"} == worker_pids
    assert len({e["instance_id"] for e in events}) == 1 + len(worker_pids)
    assert len({e["event_id"] for e in events}) == 21
