"""The one Redis writer: every routing event goes into the stream and the channel through here.

Both the in-process bridge exporter and the OTLP receiver submit events and return at once; a
thread of the writer's own (started on first use, and again in a forked child) writes them in
batches, two round trips each:

1. XADD (MAXLEN ~) for every event of the batch (and, with a retention set, an XTRIM MINID ~
   once a second, by Redis's clock); each reply is the entry's id or Redis's error for that event alone;
2. PUBLISH, for exactly the events whose XADD succeeded: never a channel message for an event
   that is not in the stream. They ride with the next batch's XADDs (one round trip per batch
   under load), or go alone when no batch follows.

In a Cluster both go to the master of the stream's slot (PUBLISH reaches every node from
there); XADDs answered MOVED or ASK wait for the slot's new owner, which is looked up again.

Exactly once across ambiguous failures: every event carries a unique `event_id`. When a batch
was sent but its replies never came (a timeout, a reset), the writer first fences the old
connection off (`CLIENT KILL ID`: nothing it sent can run afterwards), then reads the stream from
the last id it knew and re-sends only the events that are not there.

Redis's states are states, not noise: while Redis is unreachable or refuses the writes
(WRONGTYPE, OOM, READONLY, NOPERM...), events wait in a bounded backlog (the oldest dropped and
counted when it is full), `stats()` says what is wrong, one log line says it, and one more when
Redis accepts again. An error about one event only (not a server state) drops that event alone.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import hiredis
import orjson
import redis
from redis.connection import AbstractConnection
from redis.exceptions import (
    AskError,
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    ExecAbortError,
    MasterDownError,
    MovedError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    TryAgainError,
)

from sollol_otel.diagnostics import Trouble
from sollol_otel.identity import new_event_id, renew_after_fork
from sollol_otel.redis import delivery
from sollol_otel.redis.backoff import Backoff
from sollol_otel.redis.client import (
    CONNECTION_ERRORS,
    SyncClient,
    client_like,
    pool_for_key,
    refresh_topology,
    sync_client,
)
from sollol_otel.redis.clock import id_ms
from sollol_otel.redis.delivery import BridgeStats
from sollol_otel.redis.urls import parse_redis_url, redact_url, scrub
from sollol_otel.settings import Settings
from sollol_otel.wire import encode_repaired

_log = logging.getLogger(__name__)

WireFields = Mapping[str, Any]  # one event as the wire fields it is written with

#: Error replies that describe the server's state, not the event: the event waits and is retried.
#: redis-py strips the code from these; it is put back in the text of `last_error`.
_STATE_ERRORS: dict[type[Exception], str] = {
    OutOfMemoryError: "OOM",
    ReadOnlyError: "READONLY",
    NoPermissionError: "NOPERM",
    AuthenticationError: "",  # NOAUTH or WRONGPASS: the class name says which kind
    BusyLoadingError: "LOADING",
    MasterDownError: "MASTERDOWN",
    TryAgainError: "TRYAGAIN",
    ClusterDownError: "CLUSTERDOWN",
    ExecAbortError: "EXECABORT",
}
#: What setting a connection up raises: an outage (CONNECTION_ERRORS), or Redis refusing this client.
_SETUP_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, redis.ResponseError)
#: Of those, the refusals (AUTH, HELLO, SELECT refused; a Cluster asked for a database but 0).
_SETUP_REFUSALS = (AuthenticationError, redis.ResponseError)
#: A Cluster slot moved or moving: the event waits for the new owner (no state, no log line).
_REDIRECTS = (MovedError, AskError)
_STATE_CODES = frozenset({"WRONGTYPE", "BUSY", "MISCONF", "NOREPLICAS"})
#: Stream entries read per XRANGE while looking for a batch after an ambiguous failure, and in all.
_SCAN_PAGE = 1_000
_SCAN_LIMIT = 100_000
#: Asked once per connect: the connection's id (to fence it off) and Redis's clock (to trim by).
_IDENTIFY = hiredis.pack_command((b"CLIENT", b"ID")) + hiredis.pack_command((b"TIME",))  # type: ignore[arg-type]
#: How long PUBLISHes wait for a batch to ride with before they go alone (channel latency, seconds).
_PUBLISH_WAIT = 0.002


def xadd_prefix(settings: Settings) -> tuple[bytes, ...]:
    """XADD's arguments before the payload: the one place the stream's trimming is decided."""
    return (
        b"XADD",
        settings.stream.encode(),
        b"MAXLEN",
        b"~",
        str(settings.stream_maxlen).encode(),
        b"*",
        b"event",
    )


#: One event ready to write: (its event id, its JSON). A plain tuple: 50,000 a second are made.
_Entry = tuple[str, bytes]


class _Sorted(NamedTuple):
    delivered: list[_Entry]
    refused: list[_Entry]  # with a server state: they wait and are retried
    refusal: Exception | None  # that state's error
    redirected: list[_Entry]  # MOVED or ASK: they wait for the slot's owner


@dataclass
class _Unconfirmed:
    """A batch sent whose replies stopped coming: which of it reached the stream is unknown."""

    unknown: list[_Entry]
    unpublished: list[_Entry]  # delivered (their replies came) but not yet published
    after: bytes | None  # the last stream id this writer knew before sending
    client_id: int | None  # the connection that sent it, to fence off


class RedisWriter:
    """Writes routing events to Redis on its own thread; `submit` never blocks or raises."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_batch: int = 1_000,
        client: redis.Redis | None = None,
    ) -> None:
        self._settings = settings
        parse_redis_url(settings.redis_url)  # a malformed URL fails here, not on the writer's thread
        self._client: SyncClient | None = client  # else made on the writer's thread: it may ask Redis
        self._client_given = client is not None
        self._redacted_url = redact_url(settings.redis_url)
        self._max_backlog = settings.backlog
        self._max_batch = max_batch
        self._xadd = xadd_prefix(settings)
        self._publish_prefix = (b"PUBLISH", settings.channel.encode())
        self._start_afresh()
        renew_after_fork(self._after_fork)

    def _start_afresh(self) -> None:
        """Empty queues, zero counters, no thread yet: a new writer, or a forked child's copy."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._backlog: collections.deque[WireFields | _Entry] = collections.deque()
        self._in_flight = 0  # taken from the backlog, not yet delivered, dropped or put back
        self._unconfirmed: _Unconfirmed | None = None
        self._last_id: bytes | None = None
        self._submitted = self._delivered = self._retried = self._repaired = self._unpublished = 0
        self._dropped_by: collections.Counter[str] = collections.Counter()
        self._state = delivery.OK
        self._last_error: str | None = None
        self._connection: AbstractConnection | None = None  # the one the writer's thread writes on
        self._pool: redis.ConnectionPool | None = None  # the pool it came from
        self._next_trim = 0.0
        self._redis_clock: float | None = None  # Redis's TIME minus our monotonic clock, seconds
        self._to_publish: list[_Entry] = []  # in the stream, their PUBLISH not sent yet
        self._client_id: int | None = None  # of that connection, for the fence; None: unknown
        self._identified = False  # asked since it last connected
        self._trouble = Trouble(_log, unit="routing events dropped")
        self._bad_events = Trouble(_log, unit="routing events")

    def _after_fork(self) -> None:
        """In a forked child: what the parent queued is the parent's; start clean on first use."""
        if isinstance(self._client, redis.Redis) and self._client_given:
            self._client = client_like(self._client)  # the application's server, our own connections
        else:
            self._client = None  # made again on the child's writer thread
        self._start_afresh()

    # Accepting events (any thread)

    def submit(self, events: Iterable[WireFields]) -> None:
        with self._lock:
            before = len(self._backlog)
            self._backlog.extend(events)
            added = len(self._backlog) - before
            self._submitted += added
            if self._closed:
                for _ in range(added):
                    self._backlog.pop()
                self._dropped_by[delivery.NOT_DELIVERED_AT_SHUTDOWN] += added
                return
            self._trim()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sollol-otel-redis-writer", daemon=True
                )
                self._thread.start()
        self._idle.clear()
        self._wake.set()

    def drop(self, count: int, reason: str) -> None:
        """Count events a stage in front of the writer could not hand over (so the ledger has them)."""
        if count:
            with self._lock:
                self._submitted += count
                self._dropped_by[reason] += count

    def _trim(self) -> None:
        """Called with the lock held: drop the oldest beyond the backlog's bound."""
        overflow = len(self._backlog) - self._max_backlog
        if overflow > 0:
            for _ in range(overflow):
                self._backlog.popleft()
            self._dropped_by[delivery.BACKLOG_FULL] += overflow
            self._trouble.count(overflow)

    def stats(self) -> BridgeStats:
        with self._lock:
            return BridgeStats(
                exported=self._delivered,
                dropped=sum(self._dropped_by.values()),
                retried=self._retried,
                backlog=len(self._backlog) + self._in_flight,
                connected=self._state != delivery.UNREACHABLE,
                recorded=self._submitted,
                dropped_by=dict(self._dropped_by),
                healthy=self._state == delivery.OK and not self._closed,
                state=delivery.STOPPED if self._closed else self._state,
                last_error=self._last_error,
                repaired=self._repaired,
                unpublished=self._unpublished,
            )

    @property
    def redis_state(self) -> tuple[str, str | None]:
        """What Redis was doing at the last attempt (state, last error), closed or not."""
        with self._lock:
            return self._state, self._last_error

    # The writer's thread

    def _run(self) -> None:
        backoff = Backoff(initial=0.05, maximum=2.0)
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._stop.is_set():
                try:
                    progress = self._step()
                except Exception:  # a bug: say so, keep the thread (and what it holds) alive
                    _log.exception("sollol-otel's Redis writer failed; retrying")
                    progress = False
                if progress is None:
                    break
                if progress:
                    backoff.reset()
                else:
                    self._stop.wait(backoff.next_delay())
            with self._lock:
                if not self._backlog and not self._in_flight:
                    self._idle.set()

    def _step(self) -> bool | None:
        """Confirm an ambiguous batch, write the next one, or publish: True if Redis took it, None if idle."""
        if self._unconfirmed is not None:
            return self._confirm(self._unconfirmed)
        batch = self._take()
        if batch:
            return self._write(batch)
        if self._to_publish:
            self._wake.clear()
            with self._lock:
                waiting = bool(self._backlog)
            if waiting or (not self._stop.is_set() and self._wake.wait(_PUBLISH_WAIT)):
                return True  # a batch to carry them: the next event's XADD does not wait behind them
            return self._publish_alone()
        with self._lock:
            return None if not self._in_flight and not self._backlog else True

    def _take(self) -> list[_Entry]:
        """The next batch, encoded."""
        with self._lock:
            count = min(self._max_batch, len(self._backlog))
            self._in_flight += count
            items = [self._backlog.popleft() for _ in range(count)]
        return [entry for item in items if (entry := self._encoded(item)) is not None]

    def _encoded(self, item: WireFields | _Entry) -> _Entry | None:
        """One event as (id, JSON); an event no JSON can hold is dropped alone, with its reason."""
        if type(item) is tuple:  # encoded already: put back after a failure
            return item
        event: WireFields = item  # type: ignore[assignment]
        event_id = event.get("event_id")
        if type(event_id) is not str or not event_id:  # from a sender that gave none
            event_id = new_event_id()
            event = {**event, "event_id": event_id}
        try:
            return event_id, orjson.dumps(event)  # the common case
        except TypeError:  # orjson.JSONEncodeError: lone surrogates, odd values, deep nesting
            pass
        try:
            payload = encode_repaired(event)
        except Exception as error:  # circular or absurdly deep values from a foreign sender
            self._settle(dropped={delivery.UNENCODABLE: 1})
            self._bad_events.report(
                delivery.UNENCODABLE,
                "a routing event could not be encoded (%s): dropped alone, its batch goes on",
                type(error).__name__,
            )
            return None
        self._repaired += 1
        return event_id, payload

    def _connected(self) -> AbstractConnection:
        """The writer's connection, connected, its client id and Redis's clock known (asked once per connect).

        Asking before any batch is sent means a hang in the middle of a batch always leaves an
        id to fence off; if the asking itself fails, nothing was sent.
        """
        pool = pool_for_key(self._ensure_client(), self._settings.stream)
        if pool is not self._pool:  # first use, or a Cluster slot now on another master
            self._drop_connection()
            self._pool, self._connection = pool, pool.get_connection()
        connection = self._connection
        assert connection is not None
        if not self._identified:
            connection.connect()  # type: ignore[no-untyped-call]  # at once if still connected
            connection.send_packed_command([_IDENTIFY], check_health=False)  # type: ignore[no-untyped-call]
            read = _reader(connection)
            reply, clock = read(), read()
            self._client_id = reply if isinstance(reply, int) else None  # None: not permitted
            self._redis_clock = _seconds(clock) - time.monotonic() if isinstance(clock, list) else None
            self._identified = True
        return connection

    def _ensure_client(self) -> SyncClient:
        if self._client is None:
            self._client = sync_client(self._settings.redis_url)  # may ask Redis: on this thread
        return self._client

    def _stream_server(self) -> redis.Redis:
        """A client of the server holding the stream (in a Cluster, its slot's master)."""
        client = self._ensure_client()
        if isinstance(client, redis.Redis):
            return client
        return redis.Redis(connection_pool=pool_for_key(client, self._settings.stream))

    def _drop_connection(self) -> None:
        if self._connection is not None and self._pool is not None:
            self._pool.release(self._connection)  # type: ignore[arg-type]
        self._connection = self._pool = None
        self._identified = False

    def _lost(self, error: BaseException) -> bool:
        """The connection failed: close it (replies left unread make it unusable), say so.

        Redis refusing the connection itself (wrong credentials, a database it lacks, HELLO or
        SELECT not allowed) is a refusal, as a refused write is: it answers, and will not take events.
        """
        self._disconnect()
        if isinstance(error, _SETUP_REFUSALS):
            return self._refused(error)
        return self._unreachable(error)

    def _disconnect(self) -> None:
        """Close the writer's connection; the next batch connects (and identifies) afresh."""
        if self._connection is not None:
            self._connection.disconnect()  # type: ignore[no-untyped-call]
        self._identified = False

    def _trim_command(self) -> tuple[bytes, ...] | None:
        """XTRIM MINID ~ (now - retention), at most once a second: one XADD takes only one trim rule.

        "Now" is Redis's clock, as the stream's ids are: a router whose own clock runs an hour
        ahead must not erase everyone's last hour. Redis's TIME comes with each connect's
        CLIENT ID (no round trip of its own); a user not allowed TIME trims by the last id Redis
        assigned instead.
        """
        retention, now = self._settings.stream_retention, time.monotonic()
        if retention is None or now < self._next_trim:
            return None
        if self._redis_clock is not None:
            newest_ms = int((now + self._redis_clock) * 1000)
        elif self._last_id is not None:
            newest_ms = id_ms(self._last_id)
        else:
            return None
        self._next_trim = now + 1.0
        oldest = f"{max(0, newest_ms - int(retention * 1000))}-0"
        return (b"XTRIM", self._settings.stream.encode(), b"MINID", b"~", oldest.encode())

    def _write(self, batch: list[_Entry]) -> bool:
        """The PUBLISHes of the batch before (if not sent yet) and this batch's XADDs, in one round trip."""
        try:
            connection = self._connected()
        except _SETUP_ERRORS as error:  # nothing sent
            self._settle(back=batch)
            return self._lost(error)
        after, client_id = self._last_id, self._client_id
        publish, self._to_publish = self._to_publish, []  # at most once, whatever happens now
        replies: list[object] = []
        try:
            packed = self._publish_commands(publish)
            for _, payload in batch:
                packed += hiredis.pack_command((*self._xadd, payload))  # type: ignore[arg-type]
            trim = self._trim_command()
            if trim is not None:
                packed += hiredis.pack_command(trim)  # type: ignore[arg-type]
            connection.send_packed_command([bytes(packed)], check_health=False)  # type: ignore[no-untyped-call]
            read = _reader(connection)
            publish_refusal = self._published(read, len(publish))
            for _ in batch:
                replies.append(read())
            if trim is not None and isinstance(trimmed := read(), Exception):
                self._bad_events.report(
                    "trim", "Redis refuses the retention trim (%s); MAXLEN still bounds the stream", trimmed
                )
        except CONNECTION_ERRORS as error:  # sent, at least in part: which events landed is unknown
            known = self._sort(batch[: len(replies)], replies)
            self._unconfirmed = _Unconfirmed(batch[len(replies) :], known.delivered, after, client_id)
            self._settle(back=known.refused)
            return self._lost(error)
        replied = self._sort(batch, replies)
        self._to_publish = replied.delivered
        if replied.redirected:  # a Cluster slot moved or is moving: its owner takes them shortly
            self._settle(back=replied.redirected)
            self._redirected()
            return False
        return self._outcome(replied.refused, replied.refusal, publish_refusal)

    def _redirected(self) -> None:
        """MOVED or ASK: learn the Cluster's slot map again; the next batch goes to the new owner."""
        self._retried += 1
        with contextlib.suppress(*CONNECTION_ERRORS):
            refresh_topology(self._ensure_client())
        self._drop_connection()

    def _sort(self, entries: Sequence[_Entry], replies: Sequence[object]) -> _Sorted:
        """XADD replies sorted: delivered entries (counted now), and those refused with a server state.

        An entry refused for itself (not a server state) is dropped here, alone.
        """
        delivered: list[_Entry] = []
        refused: list[_Entry] = []
        redirected: list[_Entry] = []
        refusal: Exception | None = None
        dropped = 0
        for entry, reply in zip(entries, replies, strict=True):
            if type(reply) is bytes:  # the entry's id
                delivered.append(entry)
                self._last_id = reply
            elif not isinstance(reply, Exception):
                delivered.append(entry)
            elif isinstance(reply, _REDIRECTS):
                redirected.append(entry)
            elif _state_code(reply) is not None:
                refused.append(entry)
                refusal = reply
            else:
                dropped += 1
                self._bad_events.report(
                    delivery.REFUSED_BY_REDIS,
                    "Redis refused a routing event (%s); it was dropped, the rest of its batch is written",
                    self._text(reply),
                )
        self._settle(delivered=delivered, dropped={delivery.REFUSED_BY_REDIS: dropped})
        return _Sorted(delivered, refused, refusal, redirected)

    def _publish_commands(self, entries: Sequence[_Entry]) -> bytearray:
        packed = bytearray()
        for _, payload in entries:
            packed += hiredis.pack_command((*self._publish_prefix, payload))  # type: ignore[arg-type]
        return packed

    def _published(self, read: Callable[[], object], count: int) -> Exception | None:
        """Reads `count` PUBLISH replies: Redis's refusal if it refused any (those are counted)."""
        refusal: Exception | None = None
        for _ in range(count):
            reply = read()
            if isinstance(reply, Exception):
                refusal = reply
                self._unpublished += 1
        return refusal

    def _publish_alone(self) -> bool:
        """PUBLISH events in the stream when no batch follows to carry them.

        After a failed connection some messages may have gone out: none is sent again (the
        channel is at most once, as pub/sub is for any subscriber that reconnects).
        """
        try:
            connection = self._connected()
        except _SETUP_ERRORS as error:  # nothing sent: they wait
            return self._lost(error)
        publish, self._to_publish = self._to_publish, []
        try:
            connection.send_packed_command(  # type: ignore[no-untyped-call]
                [bytes(self._publish_commands(publish))], check_health=False
            )
            refusal = self._published(_reader(connection), len(publish))
        except CONNECTION_ERRORS as error:
            return self._lost(error)
        return self._outcome([], None, refusal)

    def _outcome(
        self, refused: list[_Entry], refusal: Exception | None, publish_refusal: Exception | None
    ) -> bool:
        """The state a write leaves: refused events wait at the front of the backlog for Redis to accept."""
        if refused and refusal is not None:
            self._settle(back=refused)
            if isinstance(refusal, ReadOnlyError):
                # A replica: after a failover its old master's clients stay connected to it. A new
                # connection asks the sentinels (or the Cluster) again where the master is now.
                self._disconnect()
            return self._refused(refusal)
        if publish_refusal is not None:
            self._set_state(delivery.PUBLISH_REFUSED, publish_refusal)
            self._trouble.report(
                delivery.PUBLISH_REFUSED,
                "Redis at %s refuses PUBLISH on %s (%s); routing events still reach the stream",
                self._redacted_url, self._settings.channel, self._last_error,
            )  # fmt: skip
            return True
        self._set_state(delivery.OK)
        self._trouble.clear("Redis at %s accepts routing events again", self._redacted_url)
        return True

    def _confirm(self, pending: _Unconfirmed) -> bool:
        """After an ambiguous failure: fence the old connection, find what landed, re-send the rest."""
        try:
            server = self._stream_server()
            if pending.client_id is not None:
                _fence(server, pending.client_id)
            landed = self._look(server, pending)
        except CONNECTION_ERRORS as error:
            return self._lost(error)
        except redis.ResponseError as error:  # the stream cannot be read (WRONGTYPE, OOM...): keep waiting
            return self._refused(error)
        found: list[_Entry] = []
        missing: list[_Entry] = []
        for entry in pending.unknown:
            if landed[entry[0]] > 0:
                landed[entry[0]] -= 1
                found.append(entry)
            else:
                missing.append(entry)
        self._unconfirmed = None
        self._settle(delivered=found, back=missing)
        if found:
            _log.info(
                "%d routing events sent before the failure were in the stream already: not sent again",
                len(found),
            )
        self._to_publish = pending.unpublished + found
        return self._outcome([], None, None)

    def _look(self, server: redis.Redis, pending: _Unconfirmed) -> collections.Counter[str]:
        """What `_find` finds; a user without XRANGE cannot look: everything is sent again, said once."""
        try:
            return self._find(server, pending)
        except NoPermissionError as error:
            self._bad_events.report(
                "no look",
                "after a failure Redis lets this user write but not read the stream (%s): %d routing "
                "events are sent again and may appear twice; grant +xrange for exactly once",
                self._text(error), len(pending.unknown),
            )  # fmt: skip
            return collections.Counter()

    def _find(self, server: redis.Redis, pending: _Unconfirmed) -> collections.Counter[str]:
        """How many of each unknown event id the stream holds after `pending.after`.

        An entry trimmed away (MAXLEN) before this look cannot be seen and is sent again: only
        when other writers add more than the stream keeps between the failure and the look.
        """
        wanted = collections.Counter(event_id for event_id, _ in pending.unknown)
        landed: collections.Counter[str] = collections.Counter()
        start = b"(" + pending.after if pending.after else b"-"
        scanned = 0
        while scanned < _SCAN_LIMIT and landed != wanted:
            entries: list[tuple[bytes, dict[bytes, bytes]]] = server.xrange(  # type: ignore[assignment]
                self._settings.stream, min=start, max=b"+", count=_SCAN_PAGE
            )
            for entry_id, fields in entries:
                event_id = _event_id_of(fields)
                if event_id is not None and event_id in wanted:
                    landed[event_id] += 1
                    self._last_id = entry_id
            scanned += len(entries)
            if len(entries) < _SCAN_PAGE:
                break
            start = b"(" + entries[-1][0]
        return landed

    # Ledger and state

    def _settle(
        self,
        *,
        delivered: Sequence[_Entry] = (),
        dropped: Mapping[str, int] | None = None,
        back: Sequence[_Entry] = (),
    ) -> None:
        """Move events out of flight: into the stream, dropped with a reason, or back to the backlog."""
        lost = {reason: count for reason, count in (dropped or {}).items() if count}
        if not delivered and not lost and not back:
            return
        with self._lock:
            if self._closed:  # counted when close gave up on them: the ledger is final
                return
            self._in_flight -= len(delivered) + sum(lost.values()) + len(back)
            self._delivered += len(delivered)
            self._dropped_by.update(lost)
            self._trouble.count(sum(lost.values()))
            self._backlog.extendleft(reversed(back))
            self._trim()

    def _text(self, error: BaseException) -> str:
        code = _state_code(error)
        message = str(error)
        text = f"{code} {message}" if code and not message.startswith(code) else message
        return scrub(f"{type(error).__name__}: {text}", self._settings.redis_url)

    def _set_state(self, state: str, error: BaseException | None = None) -> None:
        """The new state, with its error; an error left from a state that is over says when it ended."""
        with self._lock:
            if state == delivery.OK and self._state != delivery.OK and self._last_error is not None:
                ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                self._last_error = f"over since {ended} (was {self._state}): {self._last_error}"
            self._state = state
            if error is not None:
                self._last_error = self._text(error)

    def _unreachable(self, error: BaseException) -> bool:
        self._retried += 1
        self._set_state(delivery.UNREACHABLE, error)
        self._trouble.report(
            delivery.UNREACHABLE,
            "Redis at %s unavailable (%s); keeping up to %d routing events until it is back",
            self._redacted_url, self._last_error, self._max_backlog,
        )  # fmt: skip
        return False

    def _refused(self, error: BaseException) -> bool:
        self._retried += 1
        self._set_state(delivery.REFUSED, error)
        self._trouble.report(
            f"{delivery.REFUSED} {_state_code(error)}",
            "Redis at %s refuses routing events (%s); keeping up to %d and retrying until it accepts them",
            self._redacted_url, self._last_error, self._max_backlog,
        )  # fmt: skip
        return False

    # Flush and close (any thread)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is in Redis; False if Redis did not take it in time."""
        self._wake.set()
        return self._idle.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver for up to `timeout`, then stop; what is still pending is counted as dropped."""
        if self._stop.is_set():
            return
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._closed = True
            sent = len(self._unconfirmed.unknown) if self._unconfirmed else 0
            for reason, count in (
                (delivery.UNCONFIRMED_AT_SHUTDOWN, sent),
                (delivery.NOT_DELIVERED_AT_SHUTDOWN, len(self._backlog) + self._in_flight - sent),
            ):
                if count:
                    self._dropped_by[reason] += count
            self._backlog.clear()
            self._in_flight = 0
        self._idle.set()
        if self._pool is not None:
            self._pool.disconnect()  # the connection in use too: a blocked read ends
        if self._client is not None:
            self._client.close()


def _reader(connection: AbstractConnection) -> Callable[[], object]:
    """Reads one reply: its value, or the error Redis answered with (returned, not raised).

    Through the connection's parser where it has one (every redis-py since 2.x): its own
    `read_response` formats the server's address for each reply, half the cost at 50,000 a second.
    """
    parser = getattr(connection, "_parser", None)
    if parser is not None:
        return functools.partial(parser.read_response, disable_decoding=True)
    return functools.partial(_read, connection)


def _read(connection: AbstractConnection) -> object:
    try:
        return connection.read_response(disable_decoding=True)
    except redis.ResponseError as error:
        return error


def _state_code(error: BaseException) -> str | None:
    """The error's code when it describes the server's state (retry), None when it is about the event."""
    for kind, code in _STATE_ERRORS.items():
        if isinstance(error, kind):
            return code
    code = str(error).split(" ", 1)[0]
    return code if code in _STATE_CODES else None


def _seconds(time_reply: list[bytes]) -> float:
    """Redis's TIME reply as epoch seconds."""
    return int(time_reply[0]) + int(time_reply[1]) / 1_000_000


def _fence(client: redis.Redis, client_id: int) -> None:
    """Make sure nothing the old connection sent can still run: Redis kills it, or it is gone.

    "No such client" means gone (all it sent has run); without the permission there is no fence.
    """
    with contextlib.suppress(redis.ResponseError):
        client.execute_command("CLIENT", "KILL", "ID", client_id)  # type: ignore[no-untyped-call]


def _event_id_of(fields: Mapping[bytes, bytes]) -> str | None:
    try:
        event_id = orjson.loads(fields[b"event"]).get("event_id")
    except (KeyError, AttributeError, orjson.JSONDecodeError):  # foreign entries
        return None
    return event_id if isinstance(event_id, str) else None
