"""`--since` values: durations back from now, or points in time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sollol_otel.filters import parse_since

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "back"),
    [("30s", timedelta(seconds=30)), ("10m", timedelta(minutes=10)), ("2h", timedelta(hours=2)),
     ("1h30m", timedelta(minutes=90)), ("1d", timedelta(days=1)), ("1.5h", timedelta(minutes=90))],
)  # fmt: skip
def test_a_duration_counts_back_from_now(value: str, back: timedelta) -> None:
    assert parse_since(value, NOW) == NOW - back


def test_an_iso_time_with_an_offset_is_taken_as_written() -> None:
    assert parse_since("2026-11-27T10:00:00Z", NOW) == datetime(2026, 11, 27, 10, tzinfo=timezone.utc)


def test_an_iso_time_without_an_offset_is_local_time() -> None:
    assert parse_since("2026-11-27T10:00:00", NOW) == datetime(2026, 11, 27, 10).astimezone()


@pytest.mark.parametrize("value", ["", "10", "5x", "ten minutes", "m10"])
def test_anything_else_is_refused_with_the_accepted_forms(value: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_since(value, NOW)
