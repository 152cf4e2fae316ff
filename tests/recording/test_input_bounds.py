"""Hostile input to the API: bounded on the caller's thread, never raised, never lost, always counted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis

import sollol_otel
from sollol_otel import RoutingLogger
from sollol_otel.attributes import MAX_METADATA_CHARS, MAX_METADATA_KEYS, OVER_LIMIT_MARK
from sollol_otel.wire import CYCLE_MARK, DEPTH_MARK, MAX_LIST_ITEMS, Skipped, decode

from .conftest import balanced, raw_stream

Recording = Callable[..., RoutingLogger]


def recorded_one(redis_client: redis.Redis, stream: str) -> dict[str, Any]:
    """The one event in the stream, which every reader decodes; the ledger balanced, nothing dropped."""
    assert sollol_otel.force_flush(10.0)
    (event,) = raw_stream(redis_client, stream)
    ((_, fields),) = redis_client.xrange(stream)
    assert not isinstance(decode(fields), Skipped)
    stats = sollol_otel.bridge_stats()
    assert (stats.exported, stats.dropped) == (1, 0) and balanced(stats)
    return event


def test_ten_thousand_metadata_keys_keep_the_events_own_keys_and_warn_once(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    logger = recording()
    many = {f"key_{i}": i for i in range(10_000)}
    logger.log_route_decision("llama3.2:3b", "ollama", "fast", **many)
    event = recorded_one(redis_client, keys[0])
    assert (event["model"], event["backend"], event["reason"]) == ("llama3.2:3b", "ollama", "fast")
    assert sum(key.startswith("key_") for key in event) == MAX_METADATA_KEYS
    for _ in range(50):
        logger.log_route_decision("m", "ollama", "r", **many)
    assert sollol_otel.force_flush(10.0)
    assert sollol_otel.bridge_stats().rejected == {"metadata keys over the limit": 51}
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and "metadata keys over the limit" in said[0].getMessage()  # no SDK warnings


def test_metadata_cannot_overwrite_the_events_own_keys(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    recording().log_route_decision(
        "m", "ollama", "r", null_keys=["event_type", "model"], event_id="mine", message="hi", timestamp="then"
    )
    event = recorded_one(redis_client, keys[0])
    assert (event["event_type"], event["model"], event["message"]) == (
        "ROUTE_DECISION",
        "m",
        "🎯 m → ollama | r",
    )
    assert event["event_id"] != "mine" and event["event_id_metadata"] == "mine"
    assert event["null_keys_metadata"] == ["event_type", "model"]
    assert (event["message_metadata"], event["timestamp_metadata"]) == ("hi", "then")
    assert sollol_otel.bridge_stats().rejected == {"reserved key renamed": 4}


def test_model_or_backend_as_metadata_fill_the_events_own_only_when_it_has_none(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    logger = recording()
    logger.log_worker_load("worker-1", 2, model="llama3.2:3b")  # SOLLOL sets the event's model from it
    logger.log_coordinator_start("llama3.1:70b", 3, backend="elsewhere")  # the event has its own backend
    assert sollol_otel.force_flush(10.0)
    load, start = raw_stream(redis_client, keys[0])
    assert load["model"] == "llama3.2:3b" and "model_metadata" not in load
    assert (start["backend"], start["backend_metadata"]) == ("llamacpp", "elsewhere")


def test_deep_circular_and_unprintable_values_are_recorded_with_marks_and_counted(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    deep: list[Any] = []
    innermost = deep
    for _ in range(5_000):
        innermost.append([])
        innermost = innermost[0]
    circular: list[Any] = [1]
    circular.append(circular)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    recording().log_route_decision(
        Hostile(),
        "ollama",
        "r",
        deep=deep,
        circular=circular,
        loop=loop,
        hostile=Hostile(),
        keyed={Hostile(): 1},
    )
    event = recorded_one(redis_client, keys[0])
    assert event["model"] == "<unprintable Hostile>" and event["hostile"] == "<unprintable Hostile>"
    assert DEPTH_MARK in event["deep"] and CYCLE_MARK in event["circular"] and CYCLE_MARK in event["loop"]
    assert event["keyed"] == '{"<unprintable Hostile>": 1}'
    assert sollol_otel.bridge_stats().rejected == {
        "unprintable": 3,
        "nested too deep": 1,
        "circular reference": 2,
    }


def test_a_million_key_value_and_megabytes_of_text_stay_within_the_documented_bounds(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    huge = {f"k{i}": i for i in range(1_000_000)}
    texts = {f"text_{i}": "x" * 4_000 for i in range(20)}
    recording().log_route_decision("m", "ollama", "r", huge=huge, **texts)
    event = recorded_one(redis_client, keys[0])
    assert event["huge"].count('"k') == MAX_LIST_ITEMS
    kept = [event[f"text_{i}"] for i in range(20)]
    assert sum(len(text) for text in kept if text != OVER_LIMIT_MARK) <= MAX_METADATA_CHARS
    assert kept[0] == "x" * 4_000 and kept[-1] == OVER_LIMIT_MARK
    assert set(sollol_otel.bridge_stats().rejected) == {
        "items over the limit",
        "metadata over the size limit",
    }


def test_lone_surrogates_from_the_caller_are_replaced_before_any_exporter_sees_them(
    recording: Recording, keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    recording().log_route_decision("llama\ud800", "ollama", "r", note="x\udfffy")
    event = recorded_one(redis_client, keys[0])
    assert (event["model"], event["note"]) == ("llama\ufffd", "x\ufffdy")
    assert sollol_otel.bridge_stats().rejected == {"lone surrogates replaced": 2}


def test_a_lower_sdk_attribute_limit_lowers_the_metadata_cap_so_the_events_own_keys_survive(
    recording: Recording,
    keys: tuple[str, str],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "20")
    recording().log_route_decision("m", "ollama", "fast", **{f"key_{i}": i for i in range(100)})
    event = recorded_one(redis_client, keys[0])
    assert (event["model"], event["backend"], event["reason"]) == ("m", "ollama", "fast")
    assert event["event_id"] and sum(key.startswith("key_") for key in event) == 20 - 12
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]  # nothing evicted
