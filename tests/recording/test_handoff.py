"""The caller-to-background hand-off: never blocks, keeps the newest, counts what it drops."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sollol_otel.recording.handoff import Handoff


def test_items_are_handled_in_order_on_another_thread() -> None:
    seen: list[tuple[int, str]] = []
    handoff: Handoff[int] = Handoff(
        lambda batch: seen.extend((item, threading.current_thread().name) for item in batch), name="worker"
    )
    for item in range(1_000):
        handoff.submit(item)
    assert handoff.flush(5.0)
    assert [item for item, _ in seen] == list(range(1_000))
    assert {thread for _, thread in seen} == {"worker"}
    handoff.close()


def test_a_full_queue_drops_the_oldest_and_counts_them() -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def slow(batch: Sequence[int]) -> None:
        started.set()
        release.wait(5)
        seen.extend(batch)

    handoff: Handoff[int] = Handoff(slow, name="worker", max_size=10, batch_size=1)
    handoff.submit(-1)  # the worker takes it and blocks
    assert started.wait(5)
    for item in range(25):
        handoff.submit(item)
    release.set()
    assert handoff.flush(5.0)
    assert seen == [-1, *range(15, 25)]
    assert handoff.dropped == 15
    handoff.close()


def test_a_failing_handler_does_not_stop_the_worker() -> None:
    seen: list[int] = []

    def handle(batch: Sequence[int]) -> None:
        if 0 in batch:
            raise RuntimeError("boom")
        seen.extend(batch)

    handoff: Handoff[int] = Handoff(handle, name="worker", batch_size=1)
    handoff.submit(0)
    handoff.submit(1)
    assert handoff.flush(5.0)
    assert seen == [1]
    handoff.close()


def test_items_submitted_after_close_are_counted_as_late() -> None:
    handoff: Handoff[int] = Handoff(lambda batch: None, name="worker")
    handoff.close()
    handoff.submit(1)
    assert (handoff.late, handoff.dropped) == (1, 0)


def test_drops_are_counted_exactly_when_many_threads_submit_at_once() -> None:
    started, release = threading.Event(), threading.Event()
    handled: list[int] = []

    def blocked(batch: Sequence[int]) -> None:
        started.set()
        release.wait(10)
        handled.extend(batch)

    handoff: Handoff[int] = Handoff(blocked, name="worker", max_size=300, batch_size=1)
    handoff.submit(-1)
    assert started.wait(5)
    threads = [threading.Thread(target=lambda: [handoff.submit(n) for n in range(1_000)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    release.set()
    assert handoff.flush(10.0)
    assert len(handled) == 1 + 300
    assert handoff.dropped == 8 * 1_000 - 300
    handoff.close()
