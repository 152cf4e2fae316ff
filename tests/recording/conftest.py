"""Fixtures for the recording pipeline: configure it against a real Redis, always shut it down."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

import sollol_otel
from sollol_otel.events import RoutingEvent
from sollol_otel.wire import Skipped, decode


@pytest.fixture
def recording(keys: tuple[str, str]) -> Iterator[Callable[..., sollol_otel.RoutingLogger]]:
    """`recording(**configure_kwargs)` → a configured logger writing to this test's keys."""
    yield sollol_otel.configure
    sollol_otel.shutdown(timeout=2.0)


def read_stream(client: redis.Redis, stream: str) -> list[RoutingEvent]:
    events = []
    for _, fields in client.xrange(stream):
        event = decode(fields)
        assert not isinstance(event, Skipped), event
        events.append(event)
    return events


def raw_stream(client: redis.Redis, stream: str) -> list[dict[str, Any]]:
    import json

    return [json.loads(fields[b"event"]) for _, fields in client.xrange(stream)]


def balanced(stats: sollol_otel.BridgeStats) -> bool:
    """The ledger's promise: every event recorded is delivered, dropped with a reason, or pending."""
    return stats.recorded == stats.exported + stats.dropped + stats.backlog and stats.dropped == sum(
        stats.dropped_by.values()
    )


@dataclass
class OtlpSink:
    """An OTLP/HTTP endpoint that answers 200 and keeps every request's body, by path."""

    url: str
    received: list[tuple[str, bytes]] = field(default_factory=list)

    def bodies(self, path: str) -> list[bytes]:
        return [body for at, body in self.received if at == path]


@contextlib.contextmanager
def _serving_sink() -> Iterator[OtlpSink]:
    sink = OtlpSink("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            sink.received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    with _serving_sink() as sink:
        yield sink


@pytest.fixture
def other_otlp_sink() -> Iterator[OtlpSink]:
    with _serving_sink() as sink:
        yield sink
