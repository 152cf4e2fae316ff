"""One stream reader per server process, fanned out in memory to every connected client.

Each client has a bounded queue. Fan-out never waits on a client: a client whose queue is
full is marked overflowed, its queue is freed, and its feed tells it so and disconnects; it
resumes from its last id and loses nothing the stream still holds. Redis going away is the
reader's business (it reconnects and resumes); clients are told the state as it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from sollol_otel.filters import EventFilter
from sollol_otel.redis.backoff import Backoff
from sollol_otel.redis.client import CONNECTION_ERRORS, LazyClient
from sollol_otel.redis.stream import Gap, Position, StreamEntry, StreamReader
from sollol_otel.redis.urls import redact_url, scrub
from sollol_otel.settings import Settings
from sollol_otel.web.messages import Batch, Message, batch_messages, control

log = logging.getLogger(__name__)

#: XREAD BLOCK time; the client's socket timeout is longer so a hung Redis is noticed.
BLOCK_MS = 2000


class Overflowed(Exception):
    """The client could not keep up; `dropped` messages were discarded for it."""

    def __init__(self, dropped: int) -> None:
        super().__init__(f"client fell {dropped} messages behind")
        self.dropped = dropped


class Subscription:
    """A client's bounded queue of messages that passed its filter."""

    def __init__(self, event_filter: EventFilter, limit: int) -> None:
        self.filter = event_filter
        self._limit = limit
        self._pending: list[Batch] = []
        self._queued = 0
        self._ready = asyncio.Event()
        self._dropped: int | None = None

    def offer(self, batch: Batch) -> None:
        """Queue without ever waiting; past the limit, drop everything and mark the client slow."""
        if self._dropped is not None:
            self._dropped += len(batch)
            return
        self._queued += len(batch)
        if self._queued > self._limit:
            self._dropped = self._queued
            self._pending = []
        else:
            self._pending.append(batch)
        self._ready.set()

    async def get(self) -> list[Batch]:
        """Everything queued so far, waiting for at least one message; raises Overflowed."""
        await self._ready.wait()
        self._ready.clear()
        if self._dropped is not None:
            raise Overflowed(self._dropped)
        pending, self._pending, self._queued = self._pending, [], 0
        return Batch.coalesced(pending)


@dataclass(frozen=True)
class HubState:
    redis_up: bool
    detail: str
    last_id: str
    clients: int
    events: int
    skipped: int

    def message(self, stream: str) -> Message:
        return control("status", redis="up" if self.redis_up else "down", detail=self.detail, stream=stream)


class Hub:
    """Reads the routing stream from the moment it starts and hands each batch to every subscriber."""

    def __init__(self, settings: Settings, *, client_queue: int, flush_interval: float) -> None:
        self._settings = settings
        self._client_queue = client_queue
        self._flush_interval = flush_interval
        # Socket timeout past the XREAD block time: a hung Redis shows up as a timeout, not a stall.
        self._client = LazyClient(settings.redis_url, key=settings.stream, socket_timeout=BLOCK_MS / 1000 + 3)
        self._reader: StreamReader | None = None
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self._redis_up = False
        self._detail = "connecting"
        self._events = 0
        self._skipped = 0

    @property
    def state(self) -> HubState:
        return HubState(
            redis_up=self._redis_up,
            detail=self._detail,
            last_id=(self._reader.position if self._reader else Position()).last_id,
            clients=len(self._subscriptions),
            events=self._events,
            skipped=self._skipped,
        )

    def status_message(self) -> Message:
        return self.state.message(self._settings.stream)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sollol-otel-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    @contextlib.contextmanager
    def subscribe(self, event_filter: EventFilter) -> Iterator[Subscription]:
        """A queue that receives every batch dispatched while the `with` block runs."""
        subscription = Subscription(event_filter, self._client_queue)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def _broadcast(self, message: Message) -> None:
        batch = Batch([message])
        for subscription in self._subscriptions:
            subscription.offer(batch)

    def _on_connection(self, connected: bool, detail: str) -> None:
        self._redis_up = connected
        self._detail = scrub(detail, self._settings.redis_url)
        if connected:
            log.info("routing stream reader connected to %s", redact_url(self._settings.redis_url))
        else:
            log.warning(
                "routing stream reader lost Redis at %s: %s",
                redact_url(self._settings.redis_url),
                self._detail,
            )
        self._broadcast(self.status_message())

    async def _place(self) -> StreamReader:
        """A reader at the end of the stream, waiting for Redis as long as it takes."""
        backoff = Backoff()
        while True:
            try:
                reader = StreamReader(await self._client.get(), self._settings.stream)
                await reader.start_live()
                break
            except CONNECTION_ERRORS as exc:
                if self._redis_up or self._detail == "connecting":
                    self._on_connection(False, f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(backoff.next_delay())
        self._reader = reader
        self._on_connection(True, "connected")
        self.ready.set()
        return reader

    async def _run(self) -> None:
        reader = await self._place()
        async for batch in reader.follow(block_ms=BLOCK_MS, on_connection=self._on_connection):
            self._dispatch(batch, reader.position.offset)
            if self._flush_interval:
                await asyncio.sleep(self._flush_interval)  # gather the next batch: fewer, larger frames

    def _dispatch(self, batch: list[StreamEntry | Gap], offset: int | None) -> None:
        pairs = batch_messages(batch, offset)
        events = sum(event is not None for _, event in pairs)
        self._events += events
        self._skipped += sum(isinstance(item, StreamEntry) for item in batch) - events
        groups: dict[EventFilter, list[Subscription]] = defaultdict(list)
        for subscription in self._subscriptions:
            groups[subscription.filter].append(subscription)
        for event_filter, members in groups.items():
            shared = Batch([m for m, event in pairs if event is None or event_filter.matches(event)])
            if shared:
                for subscription in members:
                    subscription.offer(shared)
