"""The real parts the scale-out tests drive: routing decisions recorded, OTLP sent to the receiver,
and what each reader (the stream itself, `tail`, the dashboard) ended up with."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from cli.tail_cli import Running
from redis_servers import free_port
from waiting import eventually

import sollol_otel


def record(logger: sollol_otel.RoutingLogger, numbers: Iterable[int]) -> None:
    """One route decision per number, told apart by its reason `#n`."""
    for n in numbers:
        logger.log_route_decision("llama3.2:3b", "ollama", f"#{n}")


def reasons(numbers: Iterable[int]) -> list[str]:
    return [f"#{n}" for n in numbers]


def stream_reasons(client: redis.Redis, stream: str) -> list[str]:
    """The reason of every event in the stream, oldest first."""
    return [json.loads(fields[b"event"])["reason"] for _, fields in client.xrange(stream)]


def each_once(seen: Iterable[str], expected: Iterable[str]) -> bool:
    """Every expected reason exactly once, and nothing at all twice."""
    counts = Counter(seen)
    return all(counts[reason] == 1 for reason in expected) and all(n == 1 for n in counts.values())


def tail_reasons(tail: Running) -> list[str]:
    return [str(event["reason"]) for event in tail.json_events()]


def feed_reasons(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m["reason"]) for m in messages if m["type"] == "routing_event"]


@dataclass
class Receiver:
    """`sollol-otel receiver` as a process, and a sender of OTLP/JSON log records to it."""

    url: str
    process: Running

    @classmethod
    def start(cls, command: Callable[..., Running], redis_url: str) -> Receiver:
        port = free_port()
        process = command(redis_url, "receiver", "--port", str(port))
        receiver = cls(f"http://127.0.0.1:{port}", process)
        eventually(receiver.answers, timeout=30, what="the receiver to listen")
        return receiver

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def send(self, numbers: Iterable[int]) -> None:
        """One OTLP log record per number, as another language's OTel SDK sends a route decision."""
        now = time.time_ns()
        records = [
            {
                "eventName": "sollol.routing.route_decision",
                "timeUnixNano": str(now + n * 1_000_000),
                "attributes": [
                    {"key": "gen_ai.request.model", "value": {"stringValue": "llama3.2:3b"}},
                    {"key": "sollol.backend", "value": {"stringValue": "ollama"}},
                    {"key": "sollol.reason", "value": {"stringValue": f"#{n}"}},
                ],
            }
            for n in numbers
        ]
        body = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
        response = httpx.post(f"{self.url}/v1/logs", json=body, timeout=10)
        assert response.status_code == 200, response.text
