"""The event block: the seed's layout, colours per type, and untrusted text kept inert."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from sollol_otel.events import RoutingEvent
from sollol_otel.render import render_ansi, render_event
from sollol_otel.wire import decode


def event(**fields: Any) -> RoutingEvent:
    decoded = decode({"event": json.dumps({"event_type": "ROUTE_DECISION", **fields})})
    assert isinstance(decoded, RoutingEvent)
    return decoded


def test_detail_lines_follow_sollols_order_and_the_last_is_closed() -> None:
    text = render_event(
        event(
            event_type="COORDINATOR_START", instance_id="ws_1_ab", model="llama3.1:70b", backend="llamacpp",
            coordinator_host="127.0.0.1", coordinator_port=18080, rpc_backends=3, trace_id="4bf92f35",
        )
    )  # fmt: skip
    assert text.plain.splitlines()[1:] == [
        "  ├─ instance: ws_1_ab",
        "  ├─ coordinator: 127.0.0.1:18080",
        "  ├─ rpc_backends: 3",
        "  └─ trace: 4bf92f35",
    ]


def test_the_time_is_shown_in_local_time_to_the_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    moment = datetime(2026, 11, 27, 12, 3, 45, 123456, tzinfo=timezone.utc)
    plain = render_event(event(timestamp=moment.isoformat())).plain
    assert plain.startswith(f"[{moment.astimezone():%H:%M:%S}.123] ")


@pytest.mark.parametrize(
    ("event_type", "colour"),
    [("ROUTE_DECISION", "bright_cyan"), ("CACHE_HIT", "bright_blue"),
     ("FALLBACK_TRIGGERED", "bright_yellow"), ("COORDINATOR_START", "bright_green"),
     ("COORDINATOR_STOP", "bright_red"), ("MODEL_SWITCH", "bright_magenta")],
)  # fmt: skip
def test_each_event_type_has_its_seed_colour(event_type: str, colour: str) -> None:
    text = render_event(event(event_type=event_type))
    styles = [
        str(span.style) for span in text.spans if text.plain[span.start : span.end].startswith(event_type)
    ]
    assert styles == [f"bold {colour}"]


def test_rich_markup_in_a_model_name_stays_literal() -> None:
    text = render_event(event(model="[bold red]boom[/] :smile:"))
    assert "model=[bold red]boom[/] :smile:" in text.plain


def test_escape_c1_and_bidi_characters_are_shown_escaped() -> None:
    plain = render_ansi(event(model="a\x1b]0;owned\x07b", reason="c\x9b31md\u202ee"), color=False)
    assert "a\\x1b]0;owned\\x07b" in plain and "c\\x9b31md\\u202ee" in plain
    assert not any(char in plain for char in "\x1b\x07\x9b\u202e")


def test_null_model_and_backend_and_odd_values_render_without_error() -> None:
    plain = render_event(
        event(
            model=None,
            backend=None,
            confidence="high",
            duration=None,
            parameter_count="7",
            rpc_backends=["a:1", "b:2"],
        )
    ).plain
    assert "model=N/A" in plain and "backend=N/A" in plain
    assert "confidence: high" in plain and "parameters: 7B" in plain and "rpc_backends: 2 (a:1, b:2)" in plain


def test_the_ansi_path_prints_the_same_text_as_rich() -> None:
    sample = event(model="llama3.2:3b", backend="ollama", reason="r", node_url="h:1", confidence=0.5)
    assert render_ansi(sample, color=False) == render_event(sample).plain
