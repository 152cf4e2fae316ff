"""One stream reader per server process, fanned out in memory to every connected client.

Each client has a bounded queue. Fan-out never waits on a client: a client whose queue is
full is marked overflowed, its queue is freed, and its feed tells it so and disconnects; it
resumes from its last id and loses nothing the stream still holds. Redis going away is the
reader's business (it reconnects and resumes); clients are told the state as it changes.

The reader's task is supervised: should it ever end (a bug, an entry nobody foresaw), that is
logged with its traceback, every client is cut off (each resumes from its last id once the hub
is back), /healthz answers 503, and the task is restarted with backoff from where it was.
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
from sollol_otel.redis.entries import Gap, StreamEntry
from sollol_otel.redis.stream import READ_SOCKET_TIMEOUT, Position, StreamReader
from sollol_otel.redis.urls import redact_url, scrub
from sollol_otel.settings import Settings
from sollol_otel.web.messages import Batch, Message, batch_messages, control

log = logging.getLogger(__name__)

#: A reader that ran this many seconds before it stopped restarts after the shortest delay again.
HEALTHY_RUN = 60.0


class Overflowed(Exception):
    """The client could not keep up; `dropped` messages were discarded for it."""

    def __init__(self, dropped: int) -> None:
        super().__init__(f"client fell {dropped} messages behind")
        self.dropped = dropped


class HubStopped(Exception):
    """The hub's reader stopped; the client should reconnect and resume from its last id."""


class Subscription:
    """A client's bounded queue of messages that passed its filter."""

    def __init__(self, event_filter: EventFilter, limit: int) -> None:
        self.filter = event_filter
        self._limit = limit
        self._pending: list[Batch] = []
        self._queued = 0
        self._ready = asyncio.Event()
        self._dropped: int | None = None
        self._cut = False

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

    def cut(self) -> None:
        """End this client's feed: the hub stopped."""
        self._cut = True
        self._ready.set()

    async def get(self) -> list[Batch]:
        """Everything queued so far, waiting for at least one message; raises Overflowed, HubStopped."""
        await self._ready.wait()
        self._ready.clear()
        if self._cut:
            raise HubStopped
        if self._dropped is not None:
            raise Overflowed(self._dropped)
        pending, self._pending, self._queued = self._pending, [], 0
        return Batch.coalesced(pending)


@dataclass(frozen=True)
class HubState:
    running: bool
    redis_up: bool
    detail: str
    last_id: str
    clients: int
    events: int
    skipped: int

    def message(self, stream: str) -> Message:
        up = self.running and self.redis_up
        return control("status", redis="up" if up else "down", detail=self.detail, stream=stream)


class Hub:
    """Reads the routing stream from the moment it starts and hands each batch to every subscriber."""

    def __init__(self, settings: Settings, *, client_queue: int, flush_interval: float) -> None:
        self._settings = settings
        self._client_queue = client_queue
        self._flush_interval = flush_interval
        # Socket timeout past the XREAD block time: a hung Redis shows up as a timeout, not a stall.
        self._client = LazyClient(settings.redis_url, key=settings.stream, socket_timeout=READ_SOCKET_TIMEOUT)
        self._reader: StreamReader | None = None
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self.restarts = 0
        self.ready = asyncio.Event()
        self._redis_up = False
        self._detail = "connecting"
        self._events = 0
        self._skipped = 0

    @property
    def state(self) -> HubState:
        return HubState(
            running=self._running,
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
        self._task = asyncio.create_task(self._supervise(), name="sollol-otel-hub")

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

    async def _supervise(self) -> None:
        """Runs the reader; restarts it with backoff, from where it was, whenever it ends."""
        backoff = Backoff(initial=0.5, maximum=30.0)
        loop = asyncio.get_running_loop()
        while True:
            self._running = True
            started = loop.time()
            error: Exception | None = None
            try:
                await self._run()
            except Exception as exc:  # whatever it was, the dashboard must not stay dark
                error = exc
            self._running = False
            self.ready.clear()
            self.restarts += 1
            if loop.time() - started > HEALTHY_RUN:
                backoff.reset()
            delay = backoff.next_delay()
            failure = "it ended" if error is None else f"{type(error).__name__}: {error}"
            failure = scrub(failure, self._settings.redis_url)
            self._detail = f"stream reader stopped ({failure}); restarting in {delay:.1f}s"
            log.error(
                "routing stream reader stopped after %s (%s); restart %d in %.1fs",
                self.state.last_id,
                failure,
                self.restarts,
                delay,
                exc_info=error,
            )
            for subscription in self._subscriptions:
                subscription.cut()
            await asyncio.sleep(delay)
            self._detail = "restarted"
            self.ready.set()

    async def _run(self) -> None:
        reader = self._reader or await self._place()  # a restart goes on from where the reader was
        async for batch in reader.follow(on_connection=self._on_connection):
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
