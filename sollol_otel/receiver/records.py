"""OTLP records → routing events on the wire: what counts as ours, what each becomes, and the tally.

The two readers (`protobuf`, `otlp_json`) find the log records and span events in our namespace
and hand them over as `Candidate`s; everything after that is the same for both. Each record is
taken or rejected on its own: a bad one (unknown name, ids of the wrong length, a time outside
OTLP's range, a field of the wrong type) is counted and quoted in the response, and the others
in the request still land. Text JSON cannot carry in UTF-8 (lone surrogates, which OTLP/JSON
senders can write as `"\\ud800"`) is replaced with U+FFFD, and an event over the readers' size
limit loses its largest attributes (counted in its `dropped_attributes_count` key), so nothing
written is skipped by a reader later.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from sollol_otel.attributes import (
    HEADER_KEYS,
    NAMESPACE,
    RESOURCE_HOSTNAME,
    RESOURCE_INSTANCE_ID,
    RESOURCE_PID,
    RESOURCE_SERVICE,
    TRAILER_KEYS,
    to_wire_fields,
)
from sollol_otel.events import EVENT_NAME_PREFIX, event_type_of
from sollol_otel.wire import MAX_ENTRY_BYTES, MAX_STRING_CHARS, encode_repaired

#: Where SDKs older than the LogRecord.event_name field (and some Collectors) put the event name.
EVENT_NAME_ATTRIBUTE = "event.name"
#: Added to an event that had to lose attributes to stay under the readers' size limit.
DROPPED_ATTRIBUTES_COUNT = "dropped_attributes_count"
#: Room left under MAX_ENTRY_BYTES for keys the writer adds.
_ENTRY_MARGIN = 1024
#: An event whose values are all scalars (strings of at most MAX_STRING_CHARS, as the readers
#: cut them) takes at most this many wire bytes per character of its text, keys included: JSON
#: escapes a character to at most 6 bytes, and text used in the one-line message appears twice.
#: Events certainly small enough by this bound (nearly all) are not encoded here to be measured.
_WIRE_BYTES_PER_CHAR = 12
#: What the keys every event has, its ids and its time take at most, besides their text.
_WIRE_BYTES_FIXED = 4096
#: Counted for a number, boolean or null value (its text and punctuation).
_SCALAR_CHARS = 32
_KEPT_KEYS = frozenset(HEADER_KEYS + TRAILER_KEYS)
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
#: OTLP times are fixed64 nanoseconds.
_MAX_TIME_UNIX_NANO = (1 << 64) - 1
#: How many reasons for rejected records are quoted in the response's error_message.
_QUOTED_REASONS = 3


class Signal(str, enum.Enum):
    """The OTLP signal of a request; its value is the path segment (`/v1/<value>`)."""

    LOGS = "logs"
    TRACES = "traces"

    @property
    def unit(self) -> str:
        """What OTLP's partial_success counts for this signal."""
        return "log records" if self is Signal.LOGS else "spans"


class MalformedPayload(ValueError):
    """The body (or one record of it) is not what OTLP says it must be; the message says where."""


def in_our_namespace(name: str) -> bool:
    """Names under `sollol.`: routing events, and near misses that are reported instead of ignored."""
    return name[: len(NAMESPACE)].lower() == NAMESPACE


class Candidate(NamedTuple):
    """A log record or span event named in our namespace, as a reader found it."""

    name: str
    timestamp_ns: int
    attributes: dict[str, Any]
    resource: Mapping[str, Any]
    body: object
    trace_id: bytes
    span_id: bytes
    from_span: bool
    #: Whether the reader knows its text is valid UTF-8 (protobuf's parser checks it; OTLP/JSON
    #: can carry lone surrogates).
    valid_utf8: bool


#: One log record, or one span with its events: OTLP's partial_success counts these. A `str`
#: in it is a record the reader could not read, and why.
Unit = list[Candidate | str]


class ReceivedEvent(NamedTuple):
    """A routing event ready for the writer, with what deduplication needs to know about it."""

    fields: dict[str, Any]
    #: Equal for records that are the same decision exported again (a retried request: same
    #: time, and the same content, sender, ids and kind to a 64-bit hash), or that carry the
    #: same `sollol.event_id` (the writer's `event_id`: one per decision). None for a record with
    #: neither a time nor an id: never deduplicated (writing one twice is the lesser harm).
    identity: object
    #: Records that may be this one's twin (log record ↔ span event) share this key; None
    #: outside a trace, where there are no span events.
    twin_group: tuple[object, ...] | None
    timestamp_ns: int
    from_span: bool
    attributes: Mapping[str, Any]
    #: The sender's `sollol.event_id`, if it gave one.
    event_id: str | None


@dataclass
class Decoded:
    """What one request held: its routing events, and what happened to the records not taken as sent."""

    events: list[ReceivedEvent] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    repaired: int = 0
    truncated: int = 0
    duplicates: int = 0

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < _QUOTED_REASONS:
            self.reasons.append(reason)

    def error_message(self, signal: Signal) -> str:
        """OTLP's partial_success message: rejections, then what was taken but changed or merged."""
        parts = []
        if self.rejected:
            more = self.rejected - len(self.reasons)
            quoted = "; ".join(self.reasons) + (f" (and {more} more)" if more > 0 else "")
            parts.append(f"{self.rejected} {signal.unit} rejected: {quoted}")
        if self.duplicates:
            parts.append(
                f"{self.duplicates} routing events were already written (a retried request, or the "
                "log record/span event twin of a decision) and were not written again"
            )
        if self.repaired:
            parts.append(
                f"{self.repaired} routing events had text that is not valid UTF-8, replaced by U+FFFD"
            )
        if self.truncated:
            parts.append(
                f"{self.truncated} routing events were over {MAX_ENTRY_BYTES} bytes and lost their "
                f"largest attributes (see their {DROPPED_ATTRIBUTES_COUNT})"
            )
        return " | ".join(parts)


def _ids(trace_id: bytes, span_id: bytes) -> tuple[int, int] | str:
    """The ids as integers (0 when absent), or why they are unusable."""
    if len(trace_id) not in (0, _TRACE_ID_BYTES):
        return f"trace id of {len(trace_id)} bytes (OTLP requires {_TRACE_ID_BYTES})"
    if len(span_id) not in (0, _SPAN_ID_BYTES):
        return f"span id of {len(span_id)} bytes (OTLP requires {_SPAN_ID_BYTES})"
    return int.from_bytes(trace_id, "big"), int.from_bytes(span_id, "big")


def _hashable(value: object) -> object:
    return value if value is None or isinstance(value, (str, int, float)) else repr(value)


_SENDER_KEYS = (RESOURCE_INSTANCE_ID, RESOURCE_SERVICE, RESOURCE_HOSTNAME, RESOURCE_PID)


def _scalar_chars(pairs: Iterable[tuple[str, object]]) -> int | None:
    """Characters of text in keys and values when every value is a scalar; None otherwise."""
    chars = 0
    for key, value in pairs:
        kind = type(value)
        if kind is str:
            chars += len(key) + len(value)  # type: ignore[arg-type]  # a str, as just checked
        elif kind is int or kind is bool or kind is float or value is None:
            chars += len(key) + _SCALAR_CHARS
        else:
            return None
    return chars


class _Sender(NamedTuple):
    """Who sent a record (the resource attributes the wire's instance and service keys come from),
    and the characters those take on the wire (None: not only scalars)."""

    key: tuple[object, ...]
    chars: int | None
    digest: int  # hash(key), computed once per request


def _within_entry_limit(fields: dict[str, Any], size: int) -> tuple[dict[str, Any], bytes]:
    """Fields under the readers' size limit: the largest attributes go first, never the keys every
    event has (time, instance, type, model, backend, message, ids, service)."""
    sizes = sorted(
        (
            (len(orjson.dumps(key)) + len(orjson.dumps(value)) + 2, key)
            for key, value in fields.items()
            if key not in _KEPT_KEYS
        ),
        reverse=True,
    )
    excess = size - (MAX_ENTRY_BYTES - _ENTRY_MARGIN)
    kept = dict(fields)
    dropped = 0
    for cost, key in sizes:
        if excess <= 0:
            break
        del kept[key]
        excess -= cost
        dropped += 1
    kept[DROPPED_ATTRIBUTES_COUNT] = dropped
    return kept, orjson.dumps(kept)


class _Tally:
    """Per-request state of `collect`: senders already identified (one resource, many records)."""

    def __init__(self) -> None:
        self.decoded = Decoded()
        self._senders: dict[int, _Sender] = {}

    def sender(self, resource: Mapping[str, Any]) -> _Sender:
        key = id(resource)  # resources live for the whole request, so ids are not reused meanwhile
        sender = self._senders.get(key)
        if sender is None:
            values = [resource.get(name) for name in _SENDER_KEYS]
            chars = _scalar_chars(zip(_SENDER_KEYS, values, strict=True))
            sender_key = tuple(_hashable(value) for value in values)
            sender = self._senders[key] = _Sender(sender_key, chars, hash(sender_key))
        return sender

    def event(self, candidate: Candidate) -> ReceivedEvent | str:
        """The wire event, or why the record cannot be used."""
        event_type = event_type_of(candidate.name)
        if event_type is None:
            return (
                f"{candidate.name[:100]!r} is not a routing event name "
                f"(expected {EVENT_NAME_PREFIX}<event type>, e.g. {EVENT_NAME_PREFIX}route_decision)"
            )
        timestamp = candidate.timestamp_ns
        if not 0 <= timestamp <= _MAX_TIME_UNIX_NANO:
            return f"{candidate.name[:100]!r}: time {str(timestamp)[:40]} ns is outside OTLP's 0..2^64-1"
        ids = _ids(candidate.trace_id, candidate.span_id)
        if isinstance(ids, str):
            return f"{candidate.name[:100]!r}: {ids}"
        attributes = candidate.attributes
        attributes.pop(EVENT_NAME_ATTRIBUTE, None)
        fields = to_wire_fields(
            event_type,
            timestamp_ns=timestamp or None,
            attributes=attributes,
            resource=candidate.resource,
            body=candidate.body,
            trace_id=ids[0],
            span_id=ids[1],
        )
        sender = self.sender(candidate.resource)
        body = candidate.body
        try:  # a list value (an OTLP array) is not hashable: that event is measured
            content: int | None = hash((event_type, body, tuple(attributes.items())))
        except TypeError:
            content = None
        if (
            content is None
            or not candidate.valid_utf8
            or sender.chars is None
            or (sum(map(len, attributes)) + (len(attributes) + 1) * MAX_STRING_CHARS + sender.chars)
            * _WIRE_BYTES_PER_CHAR
            + _WIRE_BYTES_FIXED
            > MAX_ENTRY_BYTES - _ENTRY_MARGIN
        ):
            checked = self._checked(fields)
            if isinstance(checked, str):
                return f"{candidate.name[:100]!r}: {checked}"
            fields, payload = checked
            content = hash(payload)
        event_id = fields.get("event_id")  # a non-empty string, as the wire mapping takes it
        identity: object = None  # no time and no id: a resend cannot be told from a new decision
        if event_id is not None:
            identity = (event_type, sender.key, event_id)
        elif timestamp:  # twins are paired by their own rule, so the kind is part of a record's identity
            identity = (timestamp, hash((content, sender.digest, *ids, candidate.from_span)))
        twin_group = (*ids, event_type, sender.digest) if ids[0] and identity is not None else None
        return ReceivedEvent(
            fields, identity, twin_group, timestamp, candidate.from_span, attributes, event_id
        )

    def _checked(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bytes] | str:
        """The fields as readers will read them, and their JSON: text made UTF-8 and the event made
        to fit the readers' size limit (each counted), or why it cannot be written."""
        try:
            payload = orjson.dumps(fields)
        except orjson.JSONEncodeError:  # lone surrogates (keys too): the readers need UTF-8
            try:
                payload = encode_repaired(fields)
            except (ValueError, RecursionError) as exc:  # nested past what JSON holds
                return f"cannot be written as JSON ({type(exc).__name__})"
            fields = orjson.loads(payload)
            self.decoded.repaired += 1
        if len(payload) > MAX_ENTRY_BYTES - _ENTRY_MARGIN:
            fields, payload = _within_entry_limit(fields, len(payload))
            self.decoded.truncated += 1
        return fields, payload


def collect(units: Iterable[Unit]) -> Decoded:
    """The events of a request's units; a unit with any unusable record counts once as rejected.

    OTLP's partial_success counts rejected log records and spans, not span events: a span's
    usable routing events are still taken when another of its events is not.
    """
    tally = _Tally()
    decoded = tally.decoded
    for unit in units:
        problem: str | None = None
        for item in unit:
            event = item if isinstance(item, str) else tally.event(item)
            if isinstance(event, str):
                problem = problem or event
            else:
                decoded.events.append(event)
        if problem is not None:
            decoded.reject(problem)
    return decoded
