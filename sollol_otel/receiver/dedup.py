"""Deduplication: each decision is written once, and two different decisions are never merged.

A decision reaches the receiver more than once in two ways, and only those are merged:
- a request sent again (its reply was lost, or a Collector retried it): the same records, with
  the same content and time to the nanosecond, arriving in a later request. Identical records
  inside one request are all written (a router may make the same decision twice in one
  millisecond, and SDKs such as Node's stamp log records to the millisecond).
- the same decision exported as a log record and as a span event (the "twins"): same event
  type, sender, trace and span, the span event's attributes all equal to the log record's, and
  times at most TWIN_TOLERANCE_NS apart (Node's SDK stamps the two with different clocks).
  Each log record pairs with at most one span event, the nearest in time.
A sender that sets `sollol.event_id` (one per decision; the Python package does, on its log
records) makes this exact: records with the same id (and event type and sender) are one
decision, records with different ids never are.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sollol_otel.receiver.records import ReceivedEvent

#: Records remembered to recognise a request sent again.
DEDUP_WINDOW = 100_000
#: Traced events remembered to find their twin; a twin arriving later than this many traced
#: events is written a second time (never lost).
TWIN_WINDOW = 20_000
#: Most a log record's time and its span event twin's may differ.
TWIN_TOLERANCE_NS = 5_000_000

_MISSING = object()


def _same_decision(span_attributes: Mapping[str, object], log_attributes: Mapping[str, object]) -> bool:
    return all(log_attributes.get(key, _MISSING) == value for key, value in span_attributes.items())


class RecentDecisions:
    """What was written recently; thread-safe (requests are decoded on worker threads)."""

    def __init__(
        self,
        window: int = DEDUP_WINDOW,
        twin_window: int = TWIN_WINDOW,
        tolerance_ns: int = TWIN_TOLERANCE_NS,
    ) -> None:
        self._window = window
        self._twin_window = twin_window
        self._tolerance_ns = tolerance_ns
        self._lock = threading.Lock()
        #: identity → how many copies were written (identical records in one request are kept)
        self._copies: collections.OrderedDict[object, int] = collections.OrderedDict()
        #: twin group → traced events written, log records then span events (so a record is compared
        #: with the other kind only), each as [event, whether a twin has paired with it]
        self._traced: collections.OrderedDict[tuple[object, ...], tuple[list[list[Any]], list[list[Any]]]] = (
            collections.OrderedDict()
        )
        self._traced_count = 0

    def fresh(self, events: Sequence[ReceivedEvent]) -> list[ReceivedEvent]:
        """The events of one request that are not a decision already written, in order."""
        return self.next_part(events, len(events), {})[0]

    def next_part(
        self, events: Sequence[ReceivedEvent], limit: int, seen: dict[object, int]
    ) -> tuple[list[ReceivedEvent], int]:
        """Up to `limit` events of `events` that are not a decision already written, remembered as
        written, and how many of `events` were looked at to find them.

        A request written in parts (as room appears in the writer's backlog) passes the same
        `seen` (its records counted so far) for each part, so identical records inside it are
        still all written; what is not looked at yet is not remembered, so a retry writes it.
        """
        with self._lock:
            copies, traced = self._copies, self._traced
            fresh: list[ReceivedEvent] = []
            looked = 0
            for event in events:
                if len(fresh) >= limit:
                    break
                looked += 1
                identity = event.identity
                if identity is None:  # no time, no id: never merged with anything
                    fresh.append(event)
                    continue
                count = seen[identity] = seen.get(identity, 0) + 1
                written = copies.get(identity, 0)
                if event.event_id is None and written >= count:
                    continue  # the same record, sent again
                if event.event_id is not None and (written or count > 1):
                    continue  # one event id is one decision, however often it is sent
                copies[identity] = max(written, count)
                group = event.twin_group
                if group is not None:
                    remembered = traced.get(group)
                    if remembered is None:
                        remembered = traced[group] = ([], [])
                    elif self._paired(event, remembered[not event.from_span]):
                        continue
                    remembered[event.from_span].append([event, False])
                    self._traced_count += 1
                fresh.append(event)
            while len(copies) > self._window:
                copies.popitem(last=False)
            while self._traced_count > self._twin_window:
                logs, span_events = traced.popitem(last=False)[1]
                self._traced_count -= len(logs) + len(span_events)
            return fresh, looked

    def _paired(self, event: ReceivedEvent, others: list[list[Any]]) -> bool:
        """Pair the event with the nearest unpaired twin of the other kind written before; True if
        there is one."""
        best: list[Any] | None = None
        best_gap = self._tolerance_ns + 1
        for entry in others:
            other, paired = entry
            if paired:
                continue
            gap = abs(other.timestamp_ns - event.timestamp_ns)
            if gap >= best_gap:
                continue
            span, log = (event, other) if event.from_span else (other, event)
            if _same_decision(span.attributes, log.attributes):
                best, best_gap = entry, gap
        if best is None:
            return False
        best[1] = True
        return True
