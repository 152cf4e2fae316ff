"""What the feeds send: each message is encoded once and shared by every client that gets it.

The routing event message keeps the keys SOLLOL's `/ws/routing_events` sent (`type`,
`event_type`, `timestamp`, `instance_id`, `model`, `backend`, `reason`, `message`,
`full_event`) and adds `id` (the stream id, the resume cursor), `offset` (the entry's
position among all entries ever added, which makes gap counts exact), `time`, `trace_id` and
`node` (the Ollama node or RPC backend that got the work, as the timeline counts it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

from sollol_otel.events import RoutingEvent
from sollol_otel.redis.entries import Gap, StreamEntry
from sollol_otel.redis.stream import StreamKey, stream_key


@dataclass(frozen=True, eq=False)
class Message:
    """One feed message: its kind (the SSE event name), its JSON text and, for events, its id."""

    kind: str
    json: str
    id: str | None = None
    reset: bool = False  # a gap after which stream ids start again from zero

    @cached_property
    def key(self) -> StreamKey | None:
        return None if self.id is None else stream_key(self.id)

    @cached_property
    def sse(self) -> bytes:
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.kind}\ndata: {self.json}\n\n".encode()


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _escape(match: re.Match[str]) -> str:
    return json.dumps(match.group())[1:-1]  # \uXXXX, a surrogate pair beyond the BMP


def _dumps(body: dict[str, Any]) -> str:
    """Compact JSON, ASCII only (non-ASCII characters as \\u escapes: the same JSON value).

    ASCII text is what makes the send path cheap: the server encodes each WebSocket text frame
    for each client, and encoding an ASCII string is a copy, while one emoji in a message (🎯
    is in most) makes it a character-by-character conversion of the whole frame.
    """
    try:
        text = orjson.dumps(body, default=str).decode()
    except TypeError:  # what orjson refuses (integers past 64 bits, non-string keys), json writes
        return json.dumps(body, separators=(",", ":"), default=str)
    return text if text.isascii() else _NON_ASCII.sub(_escape, text)


def control(kind: str, **body: Any) -> Message:
    """A message that is not an event: connected, status, caught_up."""
    return Message(kind, _dumps({"type": kind, **body}))


def event_message(entry_id: str, offset: int | None, event: RoutingEvent) -> Message:
    fields = event.fields
    body = {
        "type": "routing_event",
        "id": entry_id,
        "offset": offset,
        "event_type": event.event_type,
        "timestamp": fields.get("timestamp"),
        "time": event.time.isoformat() if event.time else None,
        "instance_id": fields.get("instance_id"),
        "model": fields.get("model"),
        "backend": fields.get("backend"),
        "reason": fields.get("reason"),
        "message": event.message,
        "trace_id": event.trace_id,
        "node": event.node,
        "full_event": fields,
    }
    return Message("routing_event", _dumps(body), id=entry_id)


def gap_message(
    *, after_id: str | None, missed: int | None, reason: str, first_id: str | None = None, reset: bool = False
) -> Message:
    """Events a client will not get, said out loud: trimmed, stream reset, or the client fell behind."""
    count = "An unknown number of" if missed is None else f"{missed}"
    text = {
        "trimmed": f"{count} events were trimmed from the stream before they could be sent",
        "reset": (
            "The stream was replaced (Redis restarted, its key deleted, or a failover); "
            f"{count.lower()} events lost"
        ),
        "slow_client": f"This client fell {count.lower()} events behind; reconnect to resume",
    }[reason]
    body = {
        "type": "gap",
        "reason": reason,
        "after_id": after_id,
        "first_id": first_id,
        "missed": missed,
        "message": text,
    }
    return Message("gap", _dumps(body), reset=reset)


def skipped_message(entry_id: str, offset: int | None, reason: str) -> Message:
    """An entry no reader can show (not an event, too large, too deep), said where it was."""
    body = {
        "type": "skipped",
        "id": entry_id,
        "offset": offset,
        "reason": reason,
        "message": f"Skipped stream entry {entry_id}: {reason}",
    }
    return Message("skipped", _dumps(body), id=entry_id)


def from_gap(gap: Gap) -> Message:
    return gap_message(
        after_id=gap.after_id,
        first_id=gap.first_id,
        missed=gap.missed,
        reason="reset" if gap.reset else "trimmed",
        reset=gap.reset,
    )


def batch_messages(
    batch: list[StreamEntry | Gap], end_offset: int | None
) -> list[tuple[Message, RoutingEvent | None]]:
    """A reader's batch as messages, each with its event (None for gaps and skipped entries, which
    every filter passes) for filtering.

    `end_offset` is the reader's offset after the batch: the last entry's; entries in one
    batch are consecutive, so each earlier one is one less.
    """
    remaining = sum(isinstance(item, StreamEntry) for item in batch)
    out: list[tuple[Message, RoutingEvent | None]] = []
    for item in batch:
        if isinstance(item, Gap):
            out.append((from_gap(item), None))
            continue
        remaining -= 1
        offset = None if end_offset is None else end_offset - remaining
        if isinstance(item.item, RoutingEvent):
            out.append((event_message(item.id, offset, item.item), item.item))
        else:
            out.append((skipped_message(item.id, offset, item.item.reason), None))
    return out


#: Most messages in one frame or SSE chunk.
MAX_BATCH = 500


class Batch:
    """Messages sent together. Their encodings are built once, however many clients get them:
    the hub hands the same Batch to every client with the same filter."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages

    def __len__(self) -> int:
        return len(self.messages)

    @classmethod
    def coalesced(cls, batches: list[Batch]) -> list[Batch]:
        """Fewer, larger batches for a client that fell behind, each at most MAX_BATCH messages, so a
        lagging client costs fewer sends without holding one huge frame of its own."""
        if len(batches) == 1:
            return batches
        out: list[Batch] = []
        current: list[Message] = []
        for batch in batches:
            if current and len(current) + len(batch) > MAX_BATCH:
                out.append(cls(current))
                current = []
            current.extend(batch.messages)
        return [*out, cls(current)]

    @cached_property
    def json_array(self) -> str:
        return "[" + ",".join(m.json for m in self.messages) + "]"

    @cached_property
    def sse(self) -> bytes:
        return b"".join(m.sse for m in self.messages)

    def ws_frames(self, batched: bool) -> list[str]:
        """One JSON array for a batching client, else one object per frame (SOLLOL's way)."""
        return [self.json_array] if batched else [m.json for m in self.messages]

    @cached_property
    def last_id(self) -> str | None:
        return next((m.id for m in reversed(self.messages) if m.id is not None), None)
