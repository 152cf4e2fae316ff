"""Decisions recorded after their pipeline shut down: by a logger held across `shutdown()`, or in an
atexit handler that runs after ours.

At interpreter exit no thread may start and no later hook would flush one, so they are written to
Redis at once, on the caller's thread, within the shutdown timeout overall. After an explicit
`shutdown()` they are counted as dropped ("after shutdown") and said once. Either way the ledger
has them: recorded = exported + dropped + backlog still holds.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import redis

from sollol_otel.diagnostics import Trouble
from sollol_otel.recording.logger import Decision, wire_fields
from sollol_otel.redis import delivery
from sollol_otel.redis.client import SyncClient, sync_client
from sollol_otel.redis.delivery import BridgeStats
from sollol_otel.redis.urls import redact_url, scrub
from sollol_otel.redis.writer import xadd_prefix
from sollol_otel.settings import Settings
from sollol_otel.wire import encode

_log = logging.getLogger(__name__)

#: Why a decision recorded after an explicit `shutdown()` was dropped (a `dropped_by` reason).
AFTER_SHUTDOWN = "after shutdown"


class AfterShutdown:
    """The late decisions of one pipeline: where they went, for its ledger."""

    def __init__(self, settings: Settings, resource: Callable[[], Mapping[str, Any]]) -> None:
        self._settings = settings
        self._resource = resource
        self._count_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._trouble = Trouble(_log, unit="routing events")
        self._client: SyncClient | None = None
        self._deadline: float | None = None
        self.recorded = 0
        self.delivered = 0
        self.dropped_by: collections.Counter[str] = collections.Counter()

    def added_to(self, stats: BridgeStats) -> BridgeStats:
        """`stats` (the pipeline's own ledger) with the late decisions in it."""
        with self._count_lock:
            if not self.recorded:
                return stats
            late = stats.behind(stats.recorded + self.recorded, self.dropped_by, 0)
            return replace(late, exported=late.exported + self.delivered)

    def drop(self) -> None:
        """After an explicit shutdown(): counted, and said once."""
        self._count(AFTER_SHUTDOWN)
        self._trouble.report(
            AFTER_SHUTDOWN,
            "routing events recorded after shutdown() are dropped (bridge_stats() counts them as %r); "
            "configure() to record again",
            AFTER_SHUTDOWN,
        )

    def write(self, decision: Decision) -> None:
        """At interpreter exit: XADD and PUBLISH now, within what is left of the shutdown timeout."""
        with self._write_lock:  # exit handlers run one at a time; this keeps their order in the stream
            if self._deadline is None:
                self._deadline = time.monotonic() + self._settings.shutdown_timeout
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self._not_delivered(delivery.NOT_DELIVERED_AT_SHUTDOWN, "the shutdown timeout was reached")
                return
            try:
                payload = encode(wire_fields(decision, self._resource()))
            except Exception as error:  # a bug: the logger bounds every value before this
                self._not_delivered(delivery.UNENCODABLE, repr(error))
                return
            self._count(self._send(payload, remaining))

    def _send(self, payload: bytes, remaining: float) -> str | None:
        """None once the stream has it, else why not: not sent at all, or sent and never answered."""
        settings = self._settings
        try:
            if self._client is None:
                client = sync_client(settings.redis_url, socket_timeout=remaining)
                client.ping()  # connected before sending: a timeout after it means "sent, unanswered"
                self._client = client
        except (redis.RedisError, OSError) as error:  # every connection error too
            return self._failed(delivery.NOT_DELIVERED_AT_SHUTDOWN, error)
        try:
            self._client.execute_command(*xadd_prefix(settings), payload)  # type: ignore[no-untyped-call]
        except (redis.TimeoutError, TimeoutError) as error:
            return self._failed(delivery.UNCONFIRMED_AT_SHUTDOWN, error)
        except (redis.RedisError, OSError) as error:  # every connection error too
            return self._failed(delivery.NOT_DELIVERED_AT_SHUTDOWN, error)
        try:
            self._client.publish(settings.channel, payload)
        except redis.RedisError as error:  # in the stream already: the channel is at most once
            self._trouble.report("publish", "a routing event written at exit was not published (%s)", error)
        return None

    def _failed(self, reason: str, error: BaseException) -> str:
        text = scrub(f"{type(error).__name__}: {error}", self._settings.redis_url)
        self._trouble.report(
            reason,
            "routing events recorded at interpreter exit could not be written to Redis at %s (%s)",
            redact_url(self._settings.redis_url), text,
        )  # fmt: skip
        return reason

    def _not_delivered(self, reason: str, why: str) -> None:
        self._trouble.report(reason, "routing events recorded at interpreter exit were dropped: %s", why)
        self._count(reason)

    def _count(self, dropped: str | None) -> None:
        with self._count_lock:
            self.recorded += 1
            if dropped is None:
                self.delivered += 1
            else:
                self.dropped_by[dropped] += 1
