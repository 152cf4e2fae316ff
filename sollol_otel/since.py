"""`--since` values: a duration back from now (`10m`, `2h`, `1h30m`) or a point in time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """The moment `value` names, timezone-aware.

    Durations count back from now; ISO 8601 times without an offset are local time, as an
    operator types them. Raises ValueError with a message fit for the command line.
    """
    text = value.strip()
    moment = now or datetime.now(timezone.utc)
    if text and _DURATION.sub("", text) == "":
        seconds = sum(float(amount) * _UNITS[unit] for amount, unit in _DURATION.findall(text))
        return moment - timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a duration (like 30s, 10m, 2h, 1h30m, 1d) nor an ISO 8601 time"
        ) from None
    return parsed if parsed.tzinfo else parsed.astimezone()
