"""The wire format shared with SOLLOL 0.9.66, and the one place that parses it.

Writers (ours and SOLLOL's) put a flat JSON object in the stream entry's `event` field and
publish the same JSON on the channel. Other SOLLOL code publishes other shapes on the channel
(float epoch timestamps, `event` instead of `event_type`, lists where counts are expected),
and anybody may write to a Redis key. `decode` turns every one of those into a
`RoutingEvent` or a `Skipped` that says why; nothing downstream parses JSON itself.

`decode` is also every reader's guard: what it returns is safe to render and to send as strict
JSON, whatever the entry held. Entries over MAX_ENTRY_BYTES or nested deeper than MAX_DEPTH
are skipped (a reader counts and shows them); strings are cut at MAX_STRING_CHARS, lists at
MAX_LIST_ITEMS; numbers JSON cannot carry exactly (1e99999, NaN, integers past 64 bits) become
their text. The writers cut values to the same limits, so what they write is never skipped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

import orjson

from sollol_otel.events import RoutingEvent

#: Longest string kept in any field; longer ones are cut and end in TRUNCATION_MARK.
MAX_STRING_CHARS = 4096
#: Most items kept in a list, set or mapping value; the rest are left out.
MAX_LIST_ITEMS = 64
#: Most items read from one value in all, however its lists and mappings nest or share parts.
MAX_VALUE_ITEMS = 4 * MAX_LIST_ITEMS
#: Deepest nesting of lists and mappings a writer keeps in a value; deeper parts become DEPTH_MARK.
#: Below the readers' MAX_DEPTH, so what we write is always readable.
MAX_WRITE_DEPTH = 8
#: Largest raw entry a reader accepts (SOLLOL's own events are well under 1 KiB).
MAX_ENTRY_BYTES = 1 << 20
#: Deepest nesting of objects and lists a value may have (SOLLOL's metadata is flat or nearly).
MAX_DEPTH = 16
TRUNCATION_MARK = "…[truncated]"
DEPTH_MARK = "…[nested too deep]"
CYCLE_MARK = "…[circular]"
#: The integers every JSON reader here (orjson, the page's) takes: signed and unsigned 64-bit.
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1

WireValue = str | int | float | bool | None | list[Any]
#: Told the reason each time a value had to be cut or replaced (see `to_wire_value`).
Reject = Callable[[str], None]

_T = TypeVar("_T")
_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Skipped:
    """An entry that is not a routing event, and why."""

    reason: str


def truncate(text: str, limit: int = MAX_STRING_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def _ignore(_: str) -> None:
    pass


def to_wire_value(value: object, reject: Reject = _ignore) -> WireValue:
    """Any metadata value as something JSON can carry, within the size limits; never raises.

    Work is bounded by the limits, not by the value: a million-key mapping costs what 64 keys
    cost, and at most MAX_VALUE_ITEMS items are read in all (shared sub-lists included). What
    JSON cannot carry (objects, NaN, bytes) becomes its text; lone surrogates (not UTF-8) become
    U+FFFD; nesting deeper than MAX_WRITE_DEPTH and circular references become marks. Each cut or
    replacement is told to `reject` with its reason.
    """
    return _Conversion(reject).convert(value, 0)


class _Conversion:
    """One value's conversion: the containers on the current path, and the items still allowed."""

    def __init__(self, reject: Reject) -> None:
        self.reject = reject
        self.path: set[int] = set()
        self.items_left = MAX_VALUE_ITEMS

    def convert(self, value: object, depth: int) -> WireValue:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            if _MIN_INT <= value <= _MAX_INT:
                return value
            self.reject("integer past 64 bits")
            return str(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str):
            return clean_text(value, self.reject)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return clean_text(bytes(value[: MAX_STRING_CHARS * 4]).decode("utf-8", "replace"), self.reject)
        if isinstance(value, (list, tuple, set, frozenset, Mapping)):
            return self._container(value, depth)
        try:
            return clean_text(str(value), self.reject)
        except Exception:  # a hostile __str__ must not break recording
            return self._unprintable(value)

    def _container(
        self, value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any] | Mapping[Any, Any], depth: int
    ) -> WireValue:
        """A list for sequences and sets, JSON text for mappings."""
        if depth >= MAX_WRITE_DEPTH:
            self.reject("nested too deep")
            return DEPTH_MARK
        if id(value) in self.path:
            self.reject("circular reference")
            return CYCLE_MARK
        self.path.add(id(value))
        try:
            if len(value) > MAX_LIST_ITEMS:
                self.reject("items over the limit")
            if isinstance(value, Mapping):
                pairs = self._bounded(value.items())
                obj = {self._key(key): self.convert(item, depth + 1) for key, item in pairs}
                return truncate(json.dumps(obj, ensure_ascii=False))
            items = value[:MAX_LIST_ITEMS] if isinstance(value, (list, tuple)) else value
            return [self.convert(item, depth + 1) for item in self._bounded(items)]
        except Exception:  # a hostile container: raising __len__, __iter__ or items()
            return self._unprintable(value)
        finally:
            self.path.discard(id(value))

    def _bounded(self, items: Iterable[_T]) -> Iterator[_T]:
        """At most MAX_LIST_ITEMS of `items`, and none once MAX_VALUE_ITEMS were read in all."""
        for count, item in enumerate(items):
            if count == MAX_LIST_ITEMS:
                return
            if self.items_left <= 0:
                self.reject("items over the limit")
                return
            self.items_left -= 1
            yield item

    def _key(self, key: object) -> str:
        text = key if isinstance(key, str) else str(self.convert(key, MAX_WRITE_DEPTH))
        return clean_text(text, self.reject)

    def _unprintable(self, value: object) -> str:
        self.reject("unprintable")
        return f"<unprintable {type(value).__name__}>"


def clean_text(text: str, reject: Reject = _ignore) -> str:
    """Text cut to MAX_STRING_CHARS, with lone surrogates (which UTF-8 cannot carry) replaced."""
    if len(text) > MAX_STRING_CHARS:
        reject("string truncated")
        text = truncate(text)
    if not text.isascii() and _SURROGATES.search(text):
        reject("lone surrogates replaced")
        text = _SURROGATES.sub("\ufffd", text)
    return text


def encode(fields: Mapping[str, Any]) -> bytes:
    """Fields as the UTF-8 JSON stored in the stream and published.

    orjson is ~5x faster than json here, which matters at 50,000 events/s; what it refuses goes
    through `encode_repaired`.
    """
    try:
        return orjson.dumps(fields)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return encode_repaired(fields)


def encode_repaired(fields: Mapping[str, Any]) -> bytes:
    """What orjson refuses (a foreign sender's odd value, a lone surrogate), through json: unknown
    values as their text, surrogates replaced by U+FFFD.

    Raises ValueError (or RecursionError) only for what no JSON can hold: circular or absurdly
    deep structures.
    """
    text = json.dumps(fields, ensure_ascii=False, default=_text_of, separators=(",", ":"))
    return _SURROGATES.sub("\ufffd", text).encode()


def _text_of(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def iso_timestamp(epoch_ns: int) -> str | None:
    """SOLLOL's timestamp format: `datetime.utcnow().isoformat()`, naive UTC with microseconds.

    None for a time no calendar holds (a sender's 10^30 ns): the event keeps its other fields.
    """
    try:
        moment = datetime.fromtimestamp(epoch_ns / 1e9, tz=timezone.utc).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="microseconds")


def parse_timestamp(value: object) -> datetime | None:
    """ISO 8601 (naive means UTC, as SOLLOL writes it) or epoch seconds; None if unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds from JS writers
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo:
            return moment
        if len(text) == _SOLLOL_TIME_CHARS and text[10] == "T" and text[19] == ".":
            # SOLLOL's own, parsed again with the offset: a fifth of `replace(tzinfo=...)`'s cost
            return datetime.fromisoformat(text + "+00:00")
        return moment.replace(tzinfo=timezone.utc)
    return None


#: `datetime.utcnow().isoformat()` with microseconds, as SOLLOL writes every timestamp.
_SOLLOL_TIME_CHARS = len("2026-11-27T12:03:45.123456")


def as_text(value: bytes | bytearray | memoryview | str) -> str:
    """What Redis returns (bytes) as text: UTF-8, raising UnicodeDecodeError for anything else."""
    return value if isinstance(value, str) else bytes(value).decode("utf-8")


def _text(raw: object) -> str | Skipped:
    if type(raw) is bytes and len(raw) <= MAX_ENTRY_BYTES:  # what Redis replies: checked once
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return Skipped("entry is not UTF-8 text")
    if not isinstance(raw, (bytes, bytearray, memoryview, str)):
        return Skipped(f"entry is a {type(raw).__name__}, not text")
    if len(raw) > MAX_ENTRY_BYTES:
        return Skipped(f"entry of {len(raw)} bytes is over the {MAX_ENTRY_BYTES}-byte limit")
    try:
        return as_text(raw)
    except UnicodeDecodeError:
        return Skipped("entry is not UTF-8 text")


def _stream_payload(entry: Mapping[Any, Any]) -> object:
    for key in ("event", b"event"):
        if key in entry:
            return entry[key]
    names = ", ".join(sorted(k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in entry))
    return Skipped(f"stream entry has no 'event' field (fields: {truncate(names, 200)})")


def decode(raw: object) -> RoutingEvent | Skipped:
    """A channel message (bytes/str) or stream entry (its field mapping) as an event.

    Never raises.
    """
    # text first: checking a Mapping is an ABC's isinstance, the dearer one
    payload = raw if isinstance(raw, (bytes, str)) or not isinstance(raw, Mapping) else _stream_payload(raw)
    if isinstance(payload, Skipped):
        return payload
    text = _text(payload)
    if isinstance(text, Skipped):
        return text
    try:
        obj = orjson.loads(text)  # ~4x json's speed: readers decode 10,000 entries for one `tail`
    except orjson.JSONDecodeError:
        try:  # json says why, and reads what orjson refuses: NaN, 1e99999, integers past 64 bits
            obj = json.loads(text, parse_constant=str, parse_float=_finite_float, parse_int=_int64)
        except RecursionError:
            return _TOO_DEEP_TO_READ
        except ValueError as exc:
            return Skipped(f"not JSON: {truncate(str(exc), 200)}")
    if not isinstance(obj, dict):
        return Skipped(f"JSON {type(obj).__name__} is not an event object")
    if not _flat_and_short(text) and not _made_safe(obj, 1):
        return _TOO_DEEP_TO_READ
    kind = obj.get("event_type", obj.get("event"))
    if kind is None or kind == "" or isinstance(kind, (dict, list)):
        return Skipped("object has no event_type")
    if "event_type" not in obj:
        obj = {"event_type": str(kind), **obj}
    return event_from_fields(obj)


_TOO_DEEP_TO_READ = Skipped(f"values nest deeper than {MAX_DEPTH} levels")


def _finite_float(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def _int64(text: str) -> int | str:
    value = int(text)
    return value if _MIN_INT <= value <= _MAX_INT else text


def _flat_and_short(text: str) -> bool:
    """Whether the text alone shows nothing needs cutting: no nesting, no string or list that long.
    What SOLLOL writes is; the check costs a tenth of walking the decoded values."""
    return len(text) <= MAX_STRING_CHARS and "[" not in text and text.count("{") == 1


def _made_safe(fields: dict[str, Any], depth: int) -> bool:
    """Cuts long strings, keys and lists in place (orjson has already refused non-finite numbers and
    integers past 64 bits); False when anything nests deeper than MAX_DEPTH.

    Runs for every entry every reader decodes, so a flat event costs one pass of type checks.
    """
    long_keys = False
    for key, value in fields.items():
        kind = type(value)
        if kind is str:
            if len(value) > MAX_STRING_CHARS:
                fields[key] = truncate(value)
        elif (kind is dict or kind is list) and not _nested_safe(value, depth):
            return False
        if len(key) > MAX_STRING_CHARS:
            long_keys = True
    if long_keys:
        renamed = {truncate(key): value for key, value in fields.items()}
        fields.clear()
        fields.update(renamed)
    return True


def _nested_safe(value: dict[str, Any] | list[Any], depth: int) -> bool:
    if depth >= MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return _made_safe(value, depth + 1)
    del value[MAX_LIST_ITEMS:]
    for index, item in enumerate(value):
        kind = type(item)
        if kind is str:
            if len(item) > MAX_STRING_CHARS:
                value[index] = truncate(item)
        elif (kind is dict or kind is list) and not _nested_safe(item, depth + 1):
            return False
    return True


def event_from_fields(fields: Mapping[str, Any]) -> RoutingEvent:
    """An event from wire fields that are already known to carry an event type."""
    return RoutingEvent(str(fields.get("event_type")), parse_timestamp(fields.get("timestamp")), fields)
