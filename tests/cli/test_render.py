"""The event block: the seed's layout, colours per type, and untrusted text kept inert."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from sollol_otel.display import event_pieces, render_ansi
from sollol_otel.events import RoutingEvent
from sollol_otel.wire import decode


def event(**fields: Any) -> RoutingEvent:
    decoded = decode({"event": json.dumps({"event_type": "ROUTE_DECISION", **fields})})
    assert isinstance(decoded, RoutingEvent)
    return decoded


def plain(routing_event: RoutingEvent) -> str:
    return render_ansi(routing_event, color=False)


def test_detail_lines_follow_sollols_order_and_the_last_is_closed() -> None:
    text = plain(
        event(
            event_type="COORDINATOR_START", instance_id="ws_1_ab", model="llama3.1:70b", backend="llamacpp",
            coordinator_host="127.0.0.1", coordinator_port=18080, rpc_backends=3, trace_id="4bf92f35",
        )
    )  # fmt: skip
    assert text.splitlines()[1:] == [
        "  ├─ instance: ws_1_ab",
        "  ├─ coordinator: 127.0.0.1:18080",
        "  ├─ rpc_backends: 3",
        "  └─ trace: 4bf92f35",
    ]


def test_the_time_is_shown_in_local_time_to_the_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    moment = datetime(2026, 11, 27, 12, 3, 45, 123456, tzinfo=timezone.utc)
    text = plain(event(timestamp=moment.isoformat()))
    assert text.startswith(f"[{moment.astimezone():%H:%M:%S}.123] ")


@pytest.mark.parametrize(
    ("event_type", "colour"),
    [("ROUTE_DECISION", "bright_cyan"), ("CACHE_HIT", "bright_blue"),
     ("FALLBACK_TRIGGERED", "bright_yellow"), ("COORDINATOR_START", "bright_green"),
     ("COORDINATOR_STOP", "bright_red"), ("MODEL_SWITCH", "bright_magenta")],
)  # fmt: skip
def test_each_event_type_has_its_seed_colour(event_type: str, colour: str) -> None:
    styles = [
        style for piece, style in event_pieces(event(event_type=event_type)) if piece.startswith(event_type)
    ]
    assert styles == [f"bold {colour}"]


def test_rich_markup_in_a_model_name_stays_literal() -> None:
    assert "model=[bold red]boom[/] :smile:" in plain(event(model="[bold red]boom[/] :smile:"))


def test_escape_c1_and_bidi_characters_are_shown_escaped() -> None:
    text = plain(event(model="a\x1b]0;owned\x07b", reason="c\x9b31md\u202ee"))
    assert "a\\x1b]0;owned\\x07b" in text and "c\\x9b31md\\u202ee" in text
    assert not any(char in text for char in "\x1b\x07\x9b\u202e")


def test_null_model_and_backend_and_odd_values_render_without_error() -> None:
    text = plain(
        event(
            model=None,
            backend=None,
            confidence="high",
            duration=None,
            parameter_count="7",
            rpc_backends=["a:1", "b:2"],
        )
    )
    assert "model=N/A" in text and "backend=N/A" in text
    assert "confidence: high" in text and "parameters: 7B" in text and "rpc_backends: 2 (a:1, b:2)" in text
