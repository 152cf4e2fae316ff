"""The OTLP/HTTP receiver behind `sollol-otel collector`: routing events from any OTel sender into Redis.

POST /v1/logs and /v1/traces take protobuf or OTLP/JSON, plain, gzip or deflate. Routing events
go through the same `RedisWriter` as the in-process bridge, so readers cannot tell the paths apart.
Responses follow OTLP/HTTP: 200 with partial_success for records we could not use (or merged,
repaired, truncated), a google.rpc.Status with a clear message and nothing written for a request
we refuse, and 503 with Retry-After when we are busy (Redis not keeping up, or too many request
bytes in flight), so senders retry instead of losing events.

"Accepted" means handed whole to the writer, which never drops what it holds for want of room:
requests take room in the writer's backlog one at a time, each waiting (up to ADMIT_SECONDS,
while Redis takes events) until all of it fits, so a 200 is never followed by a "backlog full"
drop. A request larger than the whole backlog is written in parts as room appears; if Redis stops
taking events part-way, the answer is 503 saying how much was written, and the retry writes only
the rest (deduplication recognises the written part).

Bodies are read on the event loop and decompressed, decoded and deduplicated on worker threads,
so a large request never stalls /healthz or other senders; the bytes being handled at once are
capped (MAX_BYTES_IN_FLIGHT), which bounds memory whatever many senders send together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import redis
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

from sollol_otel import diagnostics
from sollol_otel.access import bearer_token, host_check, token_matches
from sollol_otel.diagnostics import Component, Trouble
from sollol_otel.receiver import otlp_json, protobuf
from sollol_otel.receiver.dedup import RecentDecisions
from sollol_otel.receiver.metrics import CONTENT_TYPE, ReceiverMetrics
from sollol_otel.receiver.records import Decoded, MalformedPayload, ReceivedEvent, Signal
from sollol_otel.redis import delivery
from sollol_otel.redis.client import CONNECTION_ERRORS, LazyClient
from sollol_otel.redis.urls import redact_url, scrub
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
#: How long a request waits for room in the writer's backlog (and for the requests before it).
ADMIT_SECONDS = 5.0
#: How often a waiting request looks for room again.
_ROOM_POLL_SECONDS = 0.002
#: /healthz gives Redis this long to answer its probe.
HEALTH_TIMEOUT = 2.0

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = frozenset({PROTOBUF, "application/protobuf"})
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_OR_GZIP_WBITS = 32 + zlib.MAX_WBITS

#: Writer states in which Redis takes events, so room in the backlog is coming.
_TAKING = frozenset({delivery.OK, delivery.PUBLISH_REFUSED})
#: How Redis refuses the health probe's XADD for its id alone: the write itself would pass.
_ID_REFUSED = re.compile(r"0-0|equal or smaller")
_STREAM_OR_NONE = frozenset({b"stream", b"none", "stream", "none"})
_UNREACHABLE: tuple[type[BaseException], ...] = (asyncio.TimeoutError, *CONNECTION_ERRORS)

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
    #: How long a request waits for room in the writer's backlog before 503.
    admit_timeout: float = ADMIT_SECONDS


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

    def __init__(
        self,
        writer: RedisWriter,
        config: ReceiverConfig,
        *,
        max_backlog: int,
        client: LazyClient,
        settings: Settings,
    ) -> None:
        self.writer = writer
        self.config = config
        self.max_backlog = max_backlog
        self.client = client
        self.settings = settings
        self.recent = RecentDecisions()
        self.in_flight = BytesInFlight(config.max_bytes_in_flight)
        self.metrics = ReceiverMetrics(writer.stats, lambda: self.in_flight.used)
        #: Parts of the server that report their state on /healthz (see `diagnostics.Component`).
        self.components: dict[str, Component] = {}
        self._limiter = anyio.CapacityLimiter(DECODE_THREADS)
        self._admission = anyio.Lock()
        self._refusals = Trouble(_log, unit="requests refused")

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

    def _decode(
        self, signal: Signal, body: bytes, encoding: str | None, json_encoded: bool, claim: Claim
    ) -> Decoded:
        """On a worker thread: the routing events of the body."""
        data = decompress(body, encoding, self.config.max_body_bytes)
        if data is not body:
            claim.add(len(data))
        return decode(signal, data, json_encoded=json_encoded)

    async def _hand_over(self, decoded: Decoded) -> tuple[int, Refused | None]:
        """Give the writer the request's new events, whole (or, beyond the backlog, in parts) as room
        appears: how many were written, and the 503 to answer when Redis did not make room in time."""
        events = decoded.events
        looked = written = 0
        seen: dict[object, int] = {}
        with anyio.move_on_after(self.config.admit_timeout):
            async with self._admission:
                while looked < len(events):
                    room = await self._room(len(events) - looked)
                    if not room:
                        break
                    with anyio.CancelScope(shield=True):  # what dedup remembers is what the writer got
                        part, seen_now = await anyio.to_thread.run_sync(
                            self._submit, events[looked:], room, seen, limiter=self._limiter
                        )
                    looked += seen_now
                    written += part
        decoded.duplicates = looked - written
        if looked == len(events):
            return written, None
        backlog = self.writer.stats().backlog
        if not looked:
            return 0, _busy(f"{backlog} routing events are waiting for Redis; retry later")
        return written, _busy(
            f"{written} of the request's {len(events)} routing events were written before Redis "
            f"fell behind ({backlog} waiting); retry: the written ones are recognised and not "
            "written twice (unless they carry neither a time nor an event id)"
        )

    async def _room(self, wanted: int) -> int:
        """Room in the writer's backlog for the next part: all `wanted` events when they can ever fit
        (else any room at all), waiting while Redis takes events; 0 while it does not."""
        needed = wanted if wanted <= self.max_backlog else 1
        while True:
            stats = self.writer.stats()
            room = self.max_backlog - stats.backlog
            if room >= needed:
                return min(room, wanted)
            if stats.state not in _TAKING:
                return 0
            await anyio.sleep(_ROOM_POLL_SECONDS)

    def _submit(self, events: list[ReceivedEvent], room: int, seen: dict[object, int]) -> tuple[int, int]:
        """On a worker thread: up to `room` new events to the writer; (written, looked at)."""
        fresh, looked = self.recent.next_part(events, room, seen)
        if fresh:
            self.writer.submit([event.fields for event in fresh])
        return len(fresh), looked

    async def export(self, request: Request, signal: Signal) -> Response:
        media_type = _media_type(request)
        json_encoded = media_type not in _PROTOBUF_TYPES  # refusals of unknown types are readable JSON
        claim = self.in_flight.claim()
        try:
            self._authorize(request)
            _check_media_type(media_type)
            body = await _read_body(request, self.config.max_body_bytes, claim)
            encoding = request.headers.get("content-encoding")
            decoded = await anyio.to_thread.run_sync(
                self._decode, signal, body, encoding, json_encoded, claim, limiter=self._limiter
            )
            written, busy = await self._hand_over(decoded)
        except MalformedPayload as exc:
            return self._refuse(signal, Refused(400, str(exc)[:1000]), json_encoded)
        except Refused as refused:
            return self._refuse(signal, refused, json_encoded)
        finally:
            claim.release()
        self.metrics.accepted(signal, decoded, written)  # a 503 may follow a part of a large request
        if busy is not None:
            return self._refuse(signal, busy, json_encoded)
        self.metrics.request(signal, 200)
        return _serialize(_success(signal, decoded), json_encoded)

    def _refuse(self, signal: Signal, refused: Refused, json_encoded: bool) -> Response:
        self.metrics.request(signal, refused.status_code)
        # The first refusal of each kind says why (a misconfigured sender); the rest are counted in /metrics.
        self._refusals.report(
            f"{signal.value} {refused.status_code}",
            "refused an OTLP %s request: %d %s",
            signal.value,
            refused.status_code,
            refused.message,
            repeat_level=logging.DEBUG,
        )
        return _refusal(refused, json_encoded)

    async def health(self) -> tuple[int, dict[str, Any]]:
        """200 only while events can be written: the writer's last attempt worked and Redis would
        take a write now (it answers, and refuses none of the checks a write passes)."""
        stats = self.writer.stats()
        state, reason = stats.state, stats.last_error
        try:
            await asyncio.wait_for(self._probe(), HEALTH_TIMEOUT)
        except _UNREACHABLE as error:
            state, reason = delivery.UNREACHABLE, self._text(error)
        except redis.RedisError as error:
            state, reason = delivery.REFUSED, self._text(error)
        except Exception as error:  # a bug: still an answer the health checks can read, never a plain 500
            _log.exception("/healthz failed")
            state, reason = "error", f"health check failed ({type(error).__name__})"
        else:
            if state in _TAKING:  # events reach the stream
                reason = None if state == delivery.OK else reason
                state = delivery.OK
        return diagnostics.health(
            state,
            reason,
            self.components,
            redis_connected=stats.connected,
            redis_url=redact_url(self.settings.redis_url),
            stream=self.settings.stream,
            writer={"state": stats.state, "last_error": stats.last_error, "dropped": stats.dropped},
            backlog=stats.backlog,
        )

    async def _probe(self) -> None:
        """Raise what Redis would answer a write to the stream now, writing nothing.

        An XADD with id 0-0 passes every check Redis makes before running a write (ACL, OOM,
        READONLY, MISCONF), then is refused for its id; TYPE finds a key of another type (WRONGTYPE),
        and is skipped when this user may not run it.
        """
        pipe = (await self.client.get()).pipeline(transaction=False)
        pipe.xadd(self.settings.stream, {"probe": "0"}, id="0-0", nomkstream=True)
        pipe.type(self.settings.stream)
        added, kind = await pipe.execute(raise_on_error=False)
        if isinstance(added, redis.ResponseError) and not _ID_REFUSED.search(str(added)):
            raise added
        if isinstance(kind, bytes | str) and kind not in _STREAM_OR_NONE:
            raise redis.ResponseError(
                f"WRONGTYPE {self.settings.stream!r} holds a {kind!r} where the stream should be"
            )

    def _text(self, error: BaseException) -> str:
        return scrub(f"{type(error).__name__}: {error}"[:500], self.settings.redis_url)


def _receiver(request: Request) -> Receiver:
    receiver: Receiver = request.app.state.receiver
    return receiver


async def _logs(request: Request) -> Response:
    return await _receiver(request).export(request, Signal.LOGS)


async def _traces(request: Request) -> Response:
    return await _receiver(request).export(request, Signal.TRACES)


async def _healthz(request: Request) -> Response:
    status, body = await _receiver(request).health()
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


async def _metrics(request: Request) -> Response:
    return Response(_receiver(request).metrics.exposition(), media_type=CONTENT_TYPE)


def create_app(settings: Settings, config: ReceiverConfig | None = None) -> Starlette:
    """The receiver app; its Redis writer starts and stops with the app's lifespan."""
    config = config or ReceiverConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        writer = RedisWriter(settings)
        client = LazyClient(settings.redis_url, key=settings.stream, max_connections=2)
        receiver = app.state.receiver = Receiver(
            writer, config, max_backlog=settings.backlog, client=client, settings=settings
        )
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(writer.close, config.shutdown_timeout)
            await client.aclose()
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
