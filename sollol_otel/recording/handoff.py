"""A bounded hand-off from a caller's thread to one background thread.

The caller pays one deque append (and, when the worker sleeps, one wake-up); it never blocks.
When the queue is full the oldest item is dropped and counted. The worker wakes on the first
item and drains everything queued, in batches, so it batches by itself under load and costs
nothing when idle. It starts on first use, and again on first use in a forked child (which
starts empty: what was queued before the fork is the parent's to handle).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sollol_otel.identity import renew_after_fork

T = TypeVar("T")

_log = logging.getLogger(__name__)


class Handoff(Generic[T]):
    """Items submitted on any thread are handled, in order, by `handle(batch)` on a worker thread.

    Every item submitted is, at rest, `handled`, `dropped` (queue full), `late` (submitted after
    close), `abandoned` (still queued when close ran out of time) or `pending`.
    """

    def __init__(
        self,
        handle: Callable[[Sequence[T]], None],
        *,
        name: str,
        max_size: int = 10_000,
        batch_size: int = 512,
    ) -> None:
        self._handle = handle
        self._name = name
        self._max_size = max_size
        self._unlocked_below = max(0, max_size - 256)
        self._batch_size = batch_size
        self._start_afresh()
        renew_after_fork(self._start_afresh)

    def _start_afresh(self) -> None:
        """Empty queue, zero counters, no worker yet: a new hand-off, or a forked child's copy."""
        self._queue: collections.deque[T] = collections.deque(maxlen=self._max_size)
        self._count_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._in_hand = 0
        self.handled = 0
        self.dropped = 0
        self.late = 0
        self.abandoned = 0

    def submit(self, item: T) -> None:
        queue = self._queue
        if len(queue) < self._unlocked_below and not self._stopping:
            queue.append(item)  # far from full: no other thread can make this append drop one
        else:
            with self._count_lock:  # near full, routers' threads race: count every drop exactly
                if self._stopping:
                    self.late += 1
                    return
                if len(queue) == queue.maxlen:
                    self.dropped += 1  # the deque drops the oldest itself
                queue.append(item)
        if self._thread is None:
            self._start()
        if not self._wake.is_set():
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # Python 3.12 at interpreter exit starts no thread: the work is done now
                    self._drain()
                    return
                self._thread = thread

    @property
    def pending(self) -> int:
        return len(self._queue) + self._in_hand

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()  # cleared before draining: an item appended after this wakes us again
            self._drain()
            if self._stopping:
                return

    def _drain(self) -> None:
        """Handle everything queued, in batches."""
        queue, size = self._queue, self._batch_size
        self._idle.clear()
        while queue:
            count = min(size, len(queue))
            self._in_hand = count
            batch = [queue.popleft() for _ in range(count)]
            try:
                self._handle(batch)
            except Exception:
                _log.exception("sollol-otel background work failed for %d items", len(batch))
            self.handled += count
            self._in_hand = 0
        self._idle.set()

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far has been handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue or not self._idle.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._wake.set()
            self._idle.wait(min(0.01, remaining))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Handle what is queued (within `timeout`), then stop the worker; what is left is abandoned."""
        if self._stopping:
            return
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        with self._count_lock:
            self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._count_lock:
            while self._queue:  # one by one: a worker still running may pop the last ones itself
                try:
                    self._queue.popleft()
                except IndexError:
                    break
                self.abandoned += 1
