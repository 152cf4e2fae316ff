"""A client's queue in the hub: fan-out never waits, a client that falls behind is cut off, counted."""

from __future__ import annotations

import asyncio

import pytest

from sollol_otel.filters import EventFilter
from sollol_otel.web.hub import HubStopped, Overflowed, Subscription
from sollol_otel.web.messages import Batch, Message


def batch(*ids: int) -> Batch:
    return Batch([Message("routing_event", "{}", id=f"{n}-0") for n in ids])


def ids(batches: list[Batch]) -> list[str | None]:
    return [message.id for b in batches for message in b.messages]


async def test_everything_queued_is_handed_over_in_order_in_one_get() -> None:
    subscription = Subscription(EventFilter(), limit=10)
    subscription.offer(batch(1, 2))
    subscription.offer(batch(3))
    assert ids(await subscription.get()) == ["1-0", "2-0", "3-0"]


async def test_get_waits_for_the_next_offer() -> None:
    subscription = Subscription(EventFilter(), limit=10)
    waiting = asyncio.create_task(subscription.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    subscription.offer(batch(1))
    assert ids(await asyncio.wait_for(waiting, 1)) == ["1-0"]


async def test_a_client_past_its_limit_is_told_how_many_messages_it_lost() -> None:
    subscription = Subscription(EventFilter(), limit=3)
    subscription.offer(batch(1, 2))
    subscription.offer(batch(3, 4))  # 4 queued > 3: the queue is freed and the client marked slow
    subscription.offer(batch(5))  # and whatever comes after is counted too, never queued
    with pytest.raises(Overflowed) as overflowed:
        await subscription.get()
    assert overflowed.value.dropped == 5


async def test_the_limit_counts_only_what_the_client_has_not_taken_yet() -> None:
    subscription = Subscription(EventFilter(), limit=3)
    for n in range(10):
        subscription.offer(batch(n))
        assert ids(await subscription.get()) == [f"{n}-0"]


async def test_a_client_cut_off_by_a_stopped_hub_is_told_at_its_next_get() -> None:
    subscription = Subscription(EventFilter(), limit=10)
    subscription.offer(batch(1))
    subscription.cut()
    with pytest.raises(HubStopped):
        await subscription.get()
