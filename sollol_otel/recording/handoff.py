"""A bounded hand-off from a caller's thread to one background thread.

The caller pays one deque append (and, when the worker sleeps, one wake-up); it never blocks.
When the queue is full the oldest item is dropped and counted. The worker wakes on the first
item and drains everything queued, in batches, so it batches by itself under load and costs
nothing when idle.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

_log = logging.getLogger(__name__)


class Handoff(Generic[T]):
    """Items submitted on any thread are handled, in order, by `handle(batch)` on a worker thread."""

    def __init__(
        self,
        handle: Callable[[Sequence[T]], None],
        *,
        name: str,
        max_size: int = 10_000,
        batch_size: int = 512,
    ) -> None:
        self._handle = handle
        self._queue: collections.deque[T] = collections.deque(maxlen=max_size)
        self._unlocked_below = max(0, max_size - 256)
        self._count_lock = threading.Lock()
        self._batch_size = batch_size
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        queue = self._queue
        if len(queue) < self._unlocked_below and not self._stopping:
            queue.append(item)  # far from full: no other thread can make this append drop one
        else:
            with self._count_lock:  # near full, routers' threads race: count every drop exactly
                if self._stopping:
                    self.dropped += 1
                    return
                if len(queue) == queue.maxlen:
                    self.dropped += 1  # the deque drops the oldest itself
                queue.append(item)
        if not self._wake.is_set():
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        queue, size = self._queue, self._batch_size
        while True:
            self._wake.wait()
            self._wake.clear()  # cleared before draining: an item appended after this wakes us again
            self._idle.clear()
            while queue:
                batch = [queue.popleft() for _ in range(min(size, len(queue)))]
                try:
                    self._handle(batch)
                except Exception:
                    _log.exception("sollol-otel background work failed for %d items", len(batch))
            self._idle.set()
            if self._stopping:
                return

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
        """Handle what is queued (within `timeout`), then stop the worker."""
        if self._stopping:
            return
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        self._stopping = True
        self._wake.set()
        self._thread.join(max(0.1, deadline - time.monotonic()))
