"""The wire format: what decodes, what is skipped and why, and the size limits."""

from __future__ import annotations

import json
from datetime import timezone

import orjson
import pytest
from poison import POISON
from sollol_events import SOLLOL_EVENT

from sollol_otel.events import EventType
from sollol_otel.wire import (
    DEPTH_MARK,
    MAX_DEPTH,
    MAX_STRING_CHARS,
    TRUNCATION_MARK,
    Skipped,
    decode,
    to_wire_value,
)


def test_a_sollol_stream_entry_decodes_with_its_naive_timestamp_read_as_utc() -> None:
    event = decode({b"event": json.dumps(SOLLOL_EVENT).encode()})
    assert not isinstance(event, Skipped)
    assert event.event_type == EventType.ROUTE_DECISION
    assert event.model == "llama3.2:3b"
    assert event.time is not None and event.time.tzinfo == timezone.utc
    assert event.time.microsecond == 123456


def test_a_channel_message_with_a_float_epoch_timestamp_decodes() -> None:
    event = decode(json.dumps({"timestamp": 1795744307.5, "event_type": "rpc_coordinator_route"}))
    assert not isinstance(event, Skipped)
    assert event.time is not None and event.time.year == 2026


def test_an_object_keyed_event_instead_of_event_type_decodes() -> None:
    event = decode(b'{"event": "node_down", "node": "10.0.0.1"}')
    assert not isinstance(event, Skipped)
    assert event.event_type == "node_down"
    assert event.fields["event_type"] == "node_down"


def test_null_model_and_backend_decode_to_none() -> None:
    event = decode(json.dumps({**SOLLOL_EVENT, "model": None, "backend": None}))
    assert not isinstance(event, Skipped)
    assert event.model is None and event.backend is None


def test_non_json_is_skipped_with_the_reason() -> None:
    result = decode(b"hello world")
    assert isinstance(result, Skipped) and result.reason.startswith("not JSON")


def test_json_that_is_not_an_object_is_skipped() -> None:
    assert isinstance(decode(b"[1, 2]"), Skipped)


def test_an_object_without_event_type_is_skipped() -> None:
    result = decode(b'{"model": "x"}')
    assert isinstance(result, Skipped) and "event_type" in result.reason


def test_a_foreign_stream_entry_without_an_event_field_is_skipped_naming_its_fields() -> None:
    result = decode({b"data": b"x", b"kind": b"y"})
    assert isinstance(result, Skipped) and "data, kind" in result.reason


def test_invalid_utf8_is_skipped() -> None:
    assert isinstance(decode(b"\xff\xfe{"), Skipped)


def test_nan_from_a_foreign_writer_becomes_text_so_browsers_can_parse_it() -> None:
    event = decode(b'{"event_type": "X", "confidence": NaN}')
    assert not isinstance(event, Skipped)
    assert event.fields["confidence"] == "NaN"


def test_megabyte_strings_are_truncated_at_the_documented_limit() -> None:
    value = to_wire_value("x" * 1_000_000)
    assert isinstance(value, str) and len(value) == MAX_STRING_CHARS and value.endswith(TRUNCATION_MARK)


def test_values_json_cannot_carry_become_text() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    assert to_wire_value(Opaque()) == "opaque"
    assert to_wire_value(float("nan")) == "nan"
    assert to_wire_value({"a": 1}) == '{"a": 1}'


def test_a_hostile_str_does_not_break_conversion() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert to_wire_value(Hostile()) == "<unprintable Hostile>"


@pytest.mark.parametrize("name", list(POISON))
def test_every_poison_entry_decodes_to_something_safe_to_render_and_send(name: str) -> None:
    result = decode(POISON[name])
    if isinstance(result, Skipped):
        assert result.reason
        return
    strict = json.dumps(dict(result.fields), allow_nan=False)  # no NaN, no Infinity
    assert orjson.loads(orjson.dumps(dict(result.fields))) == json.loads(strict)
    assert all(len(value) <= MAX_STRING_CHARS for value in result.fields.values() if isinstance(value, str))


def test_values_nested_past_the_limit_skip_the_entry_saying_why() -> None:
    nested = '{"event_type": "X", "meta": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}"
    result = decode(nested)
    assert isinstance(result, Skipped) and f"deeper than {MAX_DEPTH}" in result.reason
    assert not isinstance(
        decode(nested.replace("[]", "1", 1).replace("[", "", 1).replace("]", "", 1)), Skipped
    )


def test_numbers_json_cannot_carry_exactly_become_their_text() -> None:
    result = decode('{"event_type": "X", "a": 1e99999, "b": NaN, "c": -Infinity}')
    assert not isinstance(result, Skipped)
    assert (result.fields["a"], result.fields["b"], result.fields["c"]) == ("1e99999", "NaN", "-Infinity")


def test_an_oversized_key_is_cut_like_a_value() -> None:
    result = decode(json.dumps({"event_type": "X", "k" * 10_000: 1}))
    assert not isinstance(result, Skipped)
    assert max(len(key) for key in result.fields) == MAX_STRING_CHARS


def test_writers_cut_what_readers_would_refuse() -> None:
    deep: list[object] = []
    for _ in range(1000):
        deep = [deep]
    assert DEPTH_MARK in json.dumps(to_wire_value(deep), ensure_ascii=False)
    assert to_wire_value(10**40) == str(10**40)
    assert not isinstance(decode(json.dumps({"event_type": "X", "meta": to_wire_value(deep)})), Skipped)
