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
A sender that sets `sollol.decision_id` on its records makes this exact: records with the same
id (and event type and sender) are one decision, records with different ids never are.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping, Sequence

from sollol_otel.receiver.records import ReceivedEvent

#: Records remembered to recognise a request sent again.
DEDUP_WINDOW = 100_000
#: Traced events remembered to find their twin; a twin arriving later than this many traced
#: events is written a second time (never lost).
TWIN_WINDOW = 20_000
#: Most a log record's time and its span event twin's may differ.
TWIN_TOLERANCE_NS = 5_000_000

_MISSING = object()


class _Remembered:
    """A traced event that a later twin may pair with."""

    __slots__ = ("attributes", "from_span", "paired", "timestamp_ns")

    def __init__(self, event: ReceivedEvent) -> None:
        self.timestamp_ns = event.timestamp_ns
        self.from_span = event.from_span
        self.attributes = event.attributes
        self.paired = False


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
        self._traced: collections.OrderedDict[tuple[object, ...], list[_Remembered]] = (
            collections.OrderedDict()
        )
        self._traced_count = 0

    def fresh(self, events: Sequence[ReceivedEvent]) -> list[ReceivedEvent]:
        """The events of one request that are not a decision already written, in order."""
        with self._lock:
            in_request: collections.Counter[object] = collections.Counter()
            fresh = []
            for event in events:
                in_request[event.identity] += 1
                seen, copies = in_request[event.identity], self._copies.get(event.identity, 0)
                if event.decision_id is None and copies >= seen:
                    continue  # the same record sent before
                if event.decision_id is not None and (copies or seen > 1):
                    continue  # one decision id, one decision, however often it is sent
                if event.twin_group is not None:
                    if self._pair(event):
                        continue
                    self._remember_traced(event)
                fresh.append(event)
            for identity, count in in_request.items():
                self._copies[identity] = max(count, self._copies.get(identity, 0))
                self._copies.move_to_end(identity)
            while len(self._copies) > self._window:
                self._copies.popitem(last=False)
            return fresh

    def _pair(self, event: ReceivedEvent) -> bool:
        """Pair the event with its unpaired twin if one was written; True if so."""
        assert event.twin_group is not None
        best: _Remembered | None = None
        for other in self._traced.get(event.twin_group, ()):
            if other.paired or other.from_span == event.from_span:
                continue
            gap = abs(other.timestamp_ns - event.timestamp_ns)
            if gap > self._tolerance_ns or (best and gap >= abs(best.timestamp_ns - event.timestamp_ns)):
                continue
            span, log = (event, other) if event.from_span else (other, event)
            if _same_decision(span.attributes, log.attributes):
                best = other
        if best is None:
            return False
        best.paired = True
        return True

    def _remember_traced(self, event: ReceivedEvent) -> None:
        assert event.twin_group is not None
        group = self._traced.get(event.twin_group)
        if group is None:
            group = self._traced[event.twin_group] = []
        group.append(_Remembered(event))
        self._traced_count += 1
        while self._traced_count > self._twin_window:
            _, evicted = self._traced.popitem(last=False)
            self._traced_count -= len(evicted)
