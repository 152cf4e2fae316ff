"""The OTLP/HTTP receiver behind `sollol-otel collector`: routing events from any OTel sender into Redis.

POST /v1/logs and /v1/traces take protobuf or OTLP/JSON, plain, gzip or deflate. Routing events
go through the same `RedisWriter` as the in-process bridge, so readers cannot tell the paths apart.
Responses follow OTLP/HTTP: 200 with partial_success for records we could not use (or merged,
repaired, truncated), a google.rpc.Status with a clear message and nothing written for a request
we refuse, and 503 with Retry-After when we are busy (Redis not keeping up, or too many request
bytes in flight), so senders retry instead of losing events.

Bodies are read on the event loop and decompressed, decoded and deduplicated on worker threads,
so a large request never stalls /healthz or other senders; the bytes being handled at once are
capped (MAX_BYTES_IN_FLIGHT), which bounds memory whatever many senders send together.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
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
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sollol_otel.access import bearer_token, host_check, token_matches
from sollol_otel.receiver import otlp_json, protobuf
from sollol_otel.receiver.dedup import RecentDecisions
from sollol_otel.receiver.metrics import CONTENT_TYPE, ReceiverMetrics
from sollol_otel.receiver.records import Decoded, MalformedPayload, Signal
from sollol_otel.redis.writer import RedisWriter
from sollol_otel.settings import Settings

_log = logging.getLogger(__name__)

#: Largest body accepted, both as sent and after decompression (a gzip bomb stops here).
MAX_BODY_BYTES = 16 << 20
#: Request bytes (as sent, plus decompressed) handled at once; a request alone is always let in.
MAX_BYTES_IN_FLIGHT = 32 << 20
#: Requests decoded at once (the rest wait their turn); decoding holds the GIL, so more would
#: only make each one slower.
DECODE_THREADS = 2
#: How long a sender should wait before retrying when we are busy.
RETRY_AFTER_SECONDS = 2

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


def _busy(message: str) -> Refused:
    return Refused(503, message, {"Retry-After": str(RETRY_AFTER_SECONDS)})


@dataclass(frozen=True)
class ReceiverConfig:
    """What `sollol-otel collector` was started with; the token never leaves this object."""

    token: str | None = field(default=None, repr=False)
    #: Host names served besides loopback names; `*` for any.
    allowed_hosts: frozenset[str] = frozenset()
    max_body_bytes: int = MAX_BODY_BYTES
    max_bytes_in_flight: int = MAX_BYTES_IN_FLIGHT
    #: On shutdown, how long to keep trying to get accepted events into Redis.
    shutdown_timeout: float = 5.0


class BytesInFlight:
    """Request bytes being read or decoded now, against a cap; thread-safe."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0
        self.lock = threading.Lock()

    def claim(self) -> Claim:
        return Claim(self)


class Claim:
    """One request's share of the bytes in flight."""

    def __init__(self, budget: BytesInFlight) -> None:
        self._budget = budget
        self._held = 0

    def add(self, size: int) -> None:
        """Hold `size` more bytes, or refuse the request (503) when others' bytes fill the cap."""
        budget = self._budget
        with budget.lock:
            others = budget.used - self._held
            if others and budget.used + size > budget.cap:
                raise _busy(f"{others} bytes of other requests are being decoded; retry later")
            budget.used += size
            self._held += size

    def release(self) -> None:
        with self._budget.lock:
            self._budget.used -= self._held
            self._held = 0


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _check_media_type(media_type: str) -> None:
    if media_type != JSON and media_type not in _PROTOBUF_TYPES:
        shown = media_type[:100] or "none"
        raise Refused(415, f"Content-Type {shown!r} is not supported; send {PROTOBUF} or {JSON}")


def _too_large(limit: int) -> Refused:
    return Refused(413, f"request body is over the {limit}-byte limit; send smaller batches")


async def _read_body(request: Request, limit: int, claim: Claim) -> bytes:
    """The body, its bytes claimed before they are read (all at once when the length is declared)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        if int(declared) > limit:
            raise _too_large(limit)
        claim.add(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not declared.isdigit():
            claim.add(len(chunk))
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


def decode(signal: Signal, data: bytes, *, json_encoded: bool) -> Decoded:
    """The routing events in one export request body (already decompressed)."""
    read = otlp_json.read if json_encoded else protobuf.read
    return read(signal, data)


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
    """The export response; partial_success says what was rejected, and (as a warning with no
    rejections, as OTLP allows) what was merged, repaired or truncated."""
    message = decoded.error_message(signal)
    if signal is Signal.LOGS:
        if not message:
            return ExportLogsServiceResponse()
        return ExportLogsServiceResponse(
            partial_success=ExportLogsPartialSuccess(
                rejected_log_records=decoded.rejected, error_message=message
            )
        )
    if not message:
        return ExportTraceServiceResponse()
    return ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=decoded.rejected, error_message=message)
    )


class Receiver:
    """The request handling, apart from Starlette so the pieces are easy to name and test."""

    def __init__(self, writer: RedisWriter, config: ReceiverConfig, *, max_backlog: int) -> None:
        self.writer = writer
        self.config = config
        self.max_backlog = max_backlog
        self.recent = RecentDecisions()
        self.in_flight = BytesInFlight(config.max_bytes_in_flight)
        self.metrics = ReceiverMetrics(writer.stats, lambda: self.in_flight.used)
        self._limiter = anyio.CapacityLimiter(DECODE_THREADS)
        self._refusals: set[tuple[Signal, int]] = set()

    @property
    def decoding(self) -> int:
        """Requests being decompressed and decoded on a worker thread right now."""
        return int(self._limiter.borrowed_tokens)

    def _authorize(self, request: Request) -> None:
        token = self.config.token
        if token is not None and not token_matches(bearer_token(request.headers), token):
            raise Refused(
                401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="sollol-otel"'}
            )

    def _admit(self, count: int) -> None:
        backlog = self.writer.stats().backlog
        if backlog and backlog + count > self.max_backlog:
            raise _busy(f"{backlog} routing events are waiting for Redis; retry later")

    def _take(
        self, signal: Signal, body: bytes, encoding: str | None, json_encoded: bool, claim: Claim
    ) -> tuple[Decoded, int]:
        """On a worker thread: decode, drop what was already written, hand the rest to the writer."""
        data = decompress(body, encoding, self.config.max_body_bytes)
        if data is not body:
            claim.add(len(data))
        decoded = decode(signal, data, json_encoded=json_encoded)
        self._admit(len(decoded.events))
        fresh = self.recent.fresh(decoded.events)
        decoded.duplicates = len(decoded.events) - len(fresh)
        if fresh:
            self.writer.submit([event.fields for event in fresh])
        return decoded, len(fresh)

    async def export(self, request: Request, signal: Signal) -> Response:
        media_type = _media_type(request)
        json_encoded = media_type not in _PROTOBUF_TYPES  # refusals of unknown types are readable JSON
        claim = self.in_flight.claim()
        try:
            self._authorize(request)
            _check_media_type(media_type)
            body = await _read_body(request, self.config.max_body_bytes, claim)
            encoding = request.headers.get("content-encoding")
            decoded, written = await anyio.to_thread.run_sync(
                self._take, signal, body, encoding, json_encoded, claim, limiter=self._limiter
            )
        except MalformedPayload as exc:
            return self._refuse(signal, Refused(400, str(exc)[:1000]), json_encoded)
        except Refused as refused:
            return self._refuse(signal, refused, json_encoded)
        finally:
            claim.release()
        self.metrics.request(signal, 200)
        self.metrics.accepted(signal, decoded, written)
        return _serialize(_success(signal, decoded), json_encoded)

    def _refuse(self, signal: Signal, refused: Refused, json_encoded: bool) -> Response:
        self.metrics.request(signal, refused.status_code)
        # The first refusal of each kind says why (a misconfigured sender); the rest are counted in /metrics.
        first = (signal, refused.status_code) not in self._refusals
        self._refusals.add((signal, refused.status_code))
        _log.log(
            logging.WARNING if first else logging.DEBUG,
            "refused an OTLP %s request: %d %s",
            signal.value,
            refused.status_code,
            refused.message,
        )
        return _refusal(refused, json_encoded)

    def health(self) -> dict[str, Any]:
        stats = self.writer.stats()
        return {
            "status": "ok" if stats.connected else "degraded",
            "redis_connected": stats.connected,
            "backlog": stats.backlog,
        }


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
    return Response(_receiver(request).metrics.exposition(), media_type=CONTENT_TYPE)


def create_app(settings: Settings, config: ReceiverConfig | None = None) -> Starlette:
    """The receiver app; its Redis writer starts and stops with the app's lifespan."""
    config = config or ReceiverConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        writer = RedisWriter(settings)
        receiver = app.state.receiver = Receiver(writer, config, max_backlog=settings.backlog)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(writer.close, config.shutdown_timeout)
            receiver.metrics.shutdown()

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
