"""The OTLP/HTTP receiver behind `sollol-otel collector`: routing events from any OTel sender into Redis.

POST /v1/logs and /v1/traces take protobuf or OTLP/JSON, plain, gzip or deflate. Routing events
go through the same `RedisWriter` as the in-process bridge, so readers cannot tell the paths apart.
Responses follow OTLP/HTTP: 200 with partial_success for records we could not use, a
google.rpc.Status with a clear message and nothing written for a request we refuse, and 503 with
Retry-After when Redis is not keeping up, so senders retry instead of losing events.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sollol_otel.access import bearer_token, host_check, token_matches
from sollol_otel.attributes import RESOURCE_INSTANCE_ID, to_wire_fields
from sollol_otel.receiver.otlp import Decoded, MalformedPayload, OtlpEvent, Signal, decode
from sollol_otel.redis.writer import RedisWriter
from sollol_otel.settings import Settings

_log = logging.getLogger(__name__)

#: Largest body accepted, both as sent and after decompression (a gzip bomb stops here).
MAX_BODY_BYTES = 16 << 20
#: How long a sender should wait before retrying when Redis is not keeping up.
RETRY_AFTER_SECONDS = 2
#: Recently written events remembered to drop the second copy of a decision that a sender
#: exported both as a log event and as a span event (and retries of a request whose reply was lost).
DEDUP_WINDOW = 100_000

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = frozenset({PROTOBUF, "application/protobuf"})
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_OR_GZIP_WBITS = 32 + zlib.MAX_WBITS

# google.rpc.Code values for the Status body of refused requests.
_INVALID_ARGUMENT, _UNAVAILABLE, _UNAUTHENTICATED = 3, 14, 16


class Refused(Exception):
    """A request we do not process at all; nothing from it is written."""

    def __init__(self, status_code: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class ReceiverConfig:
    """What `sollol-otel collector` was started with; the token never leaves this object."""

    token: str | None = field(default=None, repr=False)
    #: Host names served besides loopback names; `*` for any.
    allowed_hosts: frozenset[str] = frozenset()
    max_body_bytes: int = MAX_BODY_BYTES
    #: On shutdown, how long to keep trying to get accepted events into Redis.
    shutdown_timeout: float = 5.0


class RecentEvents:
    """A bounded memory of events already written, keyed on what identifies one decision.

    Only events inside a trace are remembered: a decision is exported twice (log event and span
    event, same timestamp) only when a span was active, and events without a trace id from one
    instance cannot be told apart from two real decisions at the same nanosecond.
    """

    def __init__(self, capacity: int = DEDUP_WINDOW) -> None:
        self._capacity = capacity
        self._seen: collections.OrderedDict[tuple[object, ...], None] = collections.OrderedDict()

    def first_time(self, event: OtlpEvent) -> bool:
        if not event.trace_id or not event.timestamp_ns:
            return True
        key = (
            event.event_type,
            event.timestamp_ns,
            event.trace_id,
            event.span_id,
            event.resource.get(RESOURCE_INSTANCE_ID),
        )
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


class ReceiverStats:
    """Counters for /metrics: requests by signal and HTTP status, events by outcome."""

    def __init__(self) -> None:
        self.requests: collections.Counter[tuple[str, int]] = collections.Counter()
        self.events: collections.Counter[tuple[str, str]] = collections.Counter()


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _check_media_type(media_type: str) -> None:
    if media_type != JSON and media_type not in _PROTOBUF_TYPES:
        shown = media_type[:100] or "none"
        raise Refused(415, f"Content-Type {shown!r} is not supported; send {PROTOBUF} or {JSON}")


def _too_large(limit: int) -> Refused:
    return Refused(413, f"request body is over the {limit}-byte limit; send smaller batches")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body as the sender serialized it; refuses unknown encodings, corrupt and oversized data."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise Refused(415, f"Content-Encoding {encoding[:40]!r} is not supported; use gzip, deflate or none")
    inflater = zlib.decompressobj(_GZIP_WBITS if encoding == "gzip" else _ZLIB_OR_GZIP_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Refused(400, f"body is not valid {encoding} data: {exc}") from None
    if len(data) > limit:
        raise Refused(413, f"decompressed body is over the {limit}-byte limit; send smaller batches")
    if not inflater.eof:
        raise Refused(400, f"{encoding} body is truncated")
    return data


def _serialize(message: Message, json_encoded: bool) -> Response:
    if json_encoded:
        return Response(json_format.MessageToJson(message, indent=None), media_type=JSON)
    return Response(message.SerializeToString(), media_type=PROTOBUF)


def _refusal(refused: Refused, json_encoded: bool) -> Response:
    code = {401: _UNAUTHENTICATED, 503: _UNAVAILABLE}.get(refused.status_code, _INVALID_ARGUMENT)
    response = _serialize(Status(code=code, message=refused.message), json_encoded)
    response.status_code = refused.status_code
    response.headers.update(refused.headers)
    return response


def _success(signal: Signal, decoded: Decoded) -> Message:
    message = decoded.error_message
    if signal is Signal.LOGS:
        if not decoded.rejected:
            return ExportLogsServiceResponse()
        return ExportLogsServiceResponse(
            partial_success=ExportLogsPartialSuccess(
                rejected_log_records=decoded.rejected, error_message=message
            )
        )
    if not decoded.rejected:
        return ExportTraceServiceResponse()
    return ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=decoded.rejected, error_message=message)
    )


def to_wire(event: OtlpEvent) -> dict[str, Any]:
    return to_wire_fields(
        event.event_type,
        timestamp_ns=event.timestamp_ns,
        attributes=event.attributes,
        resource=event.resource,
        body=event.body,
        trace_id=event.trace_id,
        span_id=event.span_id,
    )


class Receiver:
    """The request handling, apart from Starlette so the pieces are easy to name and test."""

    def __init__(self, writer: RedisWriter, config: ReceiverConfig, *, max_backlog: int) -> None:
        self.writer = writer
        self.config = config
        self.max_backlog = max_backlog
        self.stats = ReceiverStats()
        self.recent = RecentEvents()

    def _authorize(self, request: Request) -> None:
        token = self.config.token
        if token is not None and not token_matches(bearer_token(request.headers), token):
            raise Refused(
                401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="sollol-otel"'}
            )

    def _admit(self, count: int) -> None:
        backlog = self.writer.stats().backlog
        if backlog and backlog + count > self.max_backlog:
            raise Refused(
                503,
                f"{backlog} routing events are waiting for Redis; retry later",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

    async def export(self, request: Request, signal: Signal) -> Response:
        media_type = _media_type(request)
        json_encoded = media_type not in _PROTOBUF_TYPES  # refusals of unknown types are readable JSON
        try:
            self._authorize(request)
            _check_media_type(media_type)
            body = await _read_body(request, self.config.max_body_bytes)
            data = decompress(body, request.headers.get("content-encoding"), self.config.max_body_bytes)
            decoded = decode(signal, data, json_encoded=json_encoded)
            self._admit(len(decoded.events))
        except MalformedPayload as exc:
            return self._refuse(signal, Refused(400, str(exc)[:1000]), json_encoded)
        except Refused as refused:
            return self._refuse(signal, refused, json_encoded)
        fresh = [event for event in decoded.events if self.recent.first_time(event)]
        if fresh:
            self.writer.submit([to_wire(event) for event in fresh])
        self.stats.requests[signal.value, 200] += 1
        self.stats.events[signal.value, "accepted"] += len(fresh)
        self.stats.events[signal.value, "duplicate"] += len(decoded.events) - len(fresh)
        self.stats.events[signal.value, "rejected"] += decoded.rejected
        return _serialize(_success(signal, decoded), json_encoded)

    def _refuse(self, signal: Signal, refused: Refused, json_encoded: bool) -> Response:
        key = (signal.value, refused.status_code)
        self.stats.requests[key] += 1
        # The first refusal of each kind says why (a misconfigured sender); the rest are counted in /metrics.
        level = logging.WARNING if self.stats.requests[key] == 1 else logging.DEBUG
        _log.log(
            level, "refused an OTLP %s request: %d %s", signal.value, refused.status_code, refused.message
        )
        return _refusal(refused, json_encoded)

    def health(self) -> dict[str, Any]:
        stats = self.writer.stats()
        return {
            "status": "ok" if stats.connected else "degraded",
            "redis_connected": stats.connected,
            "backlog": stats.backlog,
        }

    def metrics(self) -> str:
        """Prometheus text exposition of the receiver's and its writer's counters."""
        writer = self.writer.stats()
        lines = [
            "# HELP sollol_receiver_requests_total OTLP export requests by signal and HTTP status.",
            "# TYPE sollol_receiver_requests_total counter",
            *(
                f'sollol_receiver_requests_total{{signal="{signal}",code="{code}"}} {count}'
                for (signal, code), count in sorted(self.stats.requests.items())
            ),
            "# HELP sollol_receiver_events_total Routing events received, by outcome.",
            "# TYPE sollol_receiver_events_total counter",
            *(
                f'sollol_receiver_events_total{{signal="{signal}",outcome="{outcome}"}} {count}'
                for (signal, outcome), count in sorted(self.stats.events.items())
            ),
            "# HELP sollol_receiver_redis_written_total Events written to Redis by this process.",
            "# TYPE sollol_receiver_redis_written_total counter",
            f"sollol_receiver_redis_written_total {writer.exported}",
            "# HELP sollol_receiver_redis_dropped_total Events dropped because Redis did not take them.",
            "# TYPE sollol_receiver_redis_dropped_total counter",
            f"sollol_receiver_redis_dropped_total {writer.dropped}",
            "# HELP sollol_receiver_redis_backlog Events waiting for Redis.",
            "# TYPE sollol_receiver_redis_backlog gauge",
            f"sollol_receiver_redis_backlog {writer.backlog}",
            "# HELP sollol_receiver_redis_up Whether the last write to Redis succeeded.",
            "# TYPE sollol_receiver_redis_up gauge",
            f"sollol_receiver_redis_up {int(writer.connected)}",
        ]
        return "\n".join(lines) + "\n"


def _receiver(request: Request) -> Receiver:
    receiver: Receiver = request.app.state.receiver
    return receiver


async def _logs(request: Request) -> Response:
    return await _receiver(request).export(request, Signal.LOGS)


async def _traces(request: Request) -> Response:
    return await _receiver(request).export(request, Signal.TRACES)


async def _healthz(request: Request) -> Response:
    return JSONResponse(_receiver(request).health())


async def _metrics(request: Request) -> Response:
    return PlainTextResponse(_receiver(request).metrics(), media_type="text/plain; version=0.0.4")


def create_app(settings: Settings, config: ReceiverConfig | None = None) -> Starlette:
    """The receiver app; its Redis writer starts and stops with the app's lifespan."""
    config = config or ReceiverConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        writer = RedisWriter(settings)
        app.state.receiver = Receiver(writer, config, max_backlog=settings.backlog)
        try:
            yield
        finally:
            await run_in_threadpool(writer.close, config.shutdown_timeout)

    return Starlette(
        routes=[
            Route("/v1/logs", _logs, methods=["POST"]),
            Route("/v1/traces", _traces, methods=["POST"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/metrics", _metrics, methods=["GET"]),
        ],
        middleware=[host_check(config.allowed_hosts)],
        lifespan=lifespan,
    )
