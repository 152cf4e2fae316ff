"""Query parameters shared by the feeds and the JSON API, checked with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from starlette.datastructures import QueryParams

from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.redis.stream import stream_key

#: Values of a dimension an answer names by default, and at most (the rest are counted as `other`).
TOP, MAX_TOP = 50, 1000
#: Largest offset a client may name (Redis counts entries in a signed 64-bit integer).
MAX_OFFSET = 2**63 - 1


class BadParameter(ValueError):
    """A query parameter the client must fix; the message says which and why."""


def stream_id(params: Mapping[str, str], name: str, *, above_zero: bool = False) -> str | None:
    """A stream id parameter, normalised to `ms-seq`, or None when absent or blank.

    `above_zero` for an exclusive upper bound: nothing comes before 0-0.
    """
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        ms, seq = stream_key(raw)
    except ValueError as exc:
        raise BadParameter(f"{name}: {exc}") from None
    if above_zero and (ms, seq) == (0, 0):
        raise BadParameter(f"{name}=0-0: no entry comes before the first possible id")
    return f"{ms}-{seq}"


def bounded_int(params: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    value = optional_int(params, name, maximum)
    return default if value is None else value


def optional_int(params: Mapping[str, str], name: str, maximum: int | None = None) -> int | None:
    """A non-negative integer parameter (at most `maximum`), or None when absent."""
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name}={raw[:32]!r} is not an integer") from None
    if value < 0:
        raise BadParameter(f"{name}={value} is negative")
    if maximum is not None and value > maximum:
        raise BadParameter(f"{name}={value} is outside 0..{maximum}")
    return value


def event_filter(params: QueryParams) -> EventFilter:
    """The filters every feed and endpoint applies; `event_type` may be repeated or comma-separated."""
    return EventFilter.build(
        model=params.get("model"),
        backend=params.get("backend"),
        event_types=params.getlist("event_type"),
        instance=params.get("instance"),
        node=params.get("node"),
        q=params.get("q"),
        trace_id=params.get("trace_id"),
    )


def time_range(params: QueryParams, now: datetime | None = None) -> TimeRange:
    """`since` / `until`: ISO 8601 times or durations back from `now` (Redis's clock: `15m`)."""
    try:
        return TimeRange.parse(params.get("since"), params.get("until"), now)
    except ValueError as exc:
        raise BadParameter(str(exc)) from None


def top_param(params: Mapping[str, str], default: int = TOP) -> int:
    """`top`: how many values of a dimension an answer names (the rest are counted as `other`)."""
    value = bounded_int(params, "top", default, MAX_TOP)
    if value == 0:
        raise BadParameter(f"top=0 names nothing: ask for 1..{MAX_TOP}")
    return value
