"""The routing event model: event types, the decoded event, and its one-line human message."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: OTel event names are `sollol.routing.<event type in lower case>`.
EVENT_NAME_PREFIX = "sollol.routing."
#: Bumped when a key changes meaning; readers of older versions keep working (keys are only added).
SCHEMA_VERSION = 1


class EventType(str, enum.Enum):
    """Every event type SOLLOL 0.9.66 writes."""

    ROUTE_DECISION = "ROUTE_DECISION"
    CACHE_HIT = "CACHE_HIT"
    FALLBACK_TRIGGERED = "FALLBACK_TRIGGERED"
    COORDINATOR_START = "COORDINATOR_START"
    COORDINATOR_STOP = "COORDINATOR_STOP"
    OLLAMA_NODE_SELECTED = "OLLAMA_NODE_SELECTED"
    RPC_BACKEND_SELECTED = "RPC_BACKEND_SELECTED"
    MODEL_SWITCH = "MODEL_SWITCH"
    TASK_QUEUED = "TASK_QUEUED"
    TASK_START = "TASK_START"
    TASK_COMPLETE = "TASK_COMPLETE"
    WORKER_LOAD = "WORKER_LOAD"

    @property
    def event_name(self) -> str:
        return EVENT_NAME_PREFIX + self.value.lower()


#: What may follow the prefix: an identifier, so a type is always a clean stream/filter value.
_EVENT_TYPE_SUFFIX = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII | re.IGNORECASE)
_KNOWN_TYPES = {event_type.event_name: event_type.value for event_type in EventType}


def event_type_of(event_name: str | None) -> str | None:
    """The event type an OTel event name carries (`sollol.routing.cache_hit` → `CACHE_HIT`), if ours.

    The prefix and type are read case-insensitively (`SOLLOL.ROUTING.CACHE_HIT` is unambiguous);
    types we do not know yet are kept, since routers may record their own, when the suffix is an
    identifier (`sollol.routing.Not-A-Type!` is not).
    """
    if not event_name:
        return None
    known = _KNOWN_TYPES.get(event_name)
    if known is not None:
        return known
    if event_name[: len(EVENT_NAME_PREFIX)].lower() != EVENT_NAME_PREFIX:
        return None
    suffix = event_name[len(EVENT_NAME_PREFIX) :]
    return suffix.upper() if _EVENT_TYPE_SUFFIX.fullmatch(suffix) else None


class Dimension(str, enum.Enum):
    """What events are counted by (stats, the timeline, the dashboard's charts)."""

    EVENT_TYPE = "event_type"
    BACKEND = "backend"
    MODEL = "model"
    NODE = "node"
    INSTANCE = "instance"


#: The one label every count uses for an event without a value for the dimension.
MISSING = "(none)"
_ACCESSORS = {
    Dimension.BACKEND: "backend",
    Dimension.MODEL: "model",
    Dimension.NODE: "node",
    Dimension.INSTANCE: "instance_id",
}


@dataclass(frozen=True)
class RoutingEvent:
    """One decoded event: the flat wire object plus the parsed time.

    `fields` keeps every key exactly as written (SOLLOL's and foreign writers' alike); the
    properties give typed access to the keys every reader filters and renders on.
    """

    event_type: str
    time: datetime | None
    fields: Mapping[str, Any]

    def text(self, key: str) -> str | None:
        """A field as text, or None when absent or null."""
        value = self.fields.get(key)
        return None if value is None else str(value)

    @property
    def model(self) -> str | None:
        return self.text("model")

    @property
    def backend(self) -> str | None:
        return self.text("backend")

    @property
    def instance_id(self) -> str | None:
        return self.text("instance_id")

    @property
    def trace_id(self) -> str | None:
        return self.text("trace_id")

    @property
    def node(self) -> str | None:
        """The machine that got the work: an Ollama node's URL, an RPC backend's `host:port`, or
        a writer's own `node` key."""
        url = self.text("node_url")
        if url is not None:
            return url
        host = self.text("backend_host")
        if host is not None:
            port = self.text("backend_port")
            return host if port is None else f"{host}:{port}"
        return self.text("node")

    def value(self, dimension: Dimension) -> str:
        """This event's value for a dimension it is counted by; MISSING when it has none."""
        if dimension is Dimension.EVENT_TYPE:
            return self.event_type
        value = getattr(self, _ACCESSORS[dimension])
        return MISSING if value is None or value == "" else str(value)

    @property
    def message(self) -> str:
        """The writer's own message when it sent one, else ours."""
        return self.text("message") or one_line_message(self.event_type, self.fields)


def _shown(value: object) -> str:
    return "N/A" if value is None else str(value)


def _count(value: object) -> str:
    """SOLLOL sends rpc_backends as a count; other writers send the list itself."""
    if isinstance(value, (list, tuple)):
        return str(len(value))
    return _shown(value)


def _seconds(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.2f}s"
    return _shown(value)


def one_line_message(event_type: str, fields: Mapping[str, Any]) -> str:
    """SOLLOL's one-line console message, e.g. `🎯 llama3.2:3b → ollama | sufficient_resources`."""
    get = fields.get
    model, backend, reason = _shown(get("model")), _shown(get("backend")), _shown(get("reason"))
    if event_type == EventType.ROUTE_DECISION:
        return f"🎯 {model} → {backend} | {reason}"
    if event_type == EventType.CACHE_HIT:
        return f"💾 {model} → {backend} (cached)"
    if event_type == EventType.FALLBACK_TRIGGERED:
        return f"⚠️  {model}: {_shown(get('from_backend'))} → {backend} | {reason}"
    if event_type == EventType.COORDINATOR_START:
        return f"🚀 Coordinator started: {model} ({_count(get('rpc_backends'))} RPC backends)"
    if event_type == EventType.COORDINATOR_STOP:
        return f"⏹️  Coordinator stopped: {model}"
    if event_type == EventType.OLLAMA_NODE_SELECTED:
        return f"📡 {model} → {_shown(get('node_url'))} | {reason}"
    if event_type == EventType.RPC_BACKEND_SELECTED:
        return f"🔗 RPC backend {_shown(get('backend_host'))}:{_shown(get('backend_port'))} | {reason}"
    if event_type == EventType.MODEL_SWITCH:
        return f"🔄 Model switch: {_shown(get('from_model'))} → {model} ({backend})"
    if event_type == EventType.TASK_QUEUED:
        return f"📥 Task {_shown(get('task_id'))} queued: {model}"
    if event_type == EventType.TASK_START:
        return f"▶️  Task {_shown(get('task_id'))} started: {model} on {_shown(get('worker'))}"
    if event_type == EventType.TASK_COMPLETE:
        outcome = "completed" if get("success", True) else "failed"
        return (
            f"{'✅' if outcome == 'completed' else '❌'} Task {_shown(get('task_id'))} {outcome}: "
            f"{model} on {_shown(get('worker'))} in {_seconds(get('duration'))}"
        )
    if event_type == EventType.WORKER_LOAD:
        load = [f"{_shown(get('active_tasks'))} active tasks"]
        if get("cpu_percent") is not None:
            load.append(f"cpu {get('cpu_percent')}%")
        if get("memory_mb") is not None:
            load.append(f"memory {get('memory_mb')} MB")
        return f"📊 Worker {_shown(get('worker'))}: {', '.join(load)}"
    return f"• {event_type} {model} → {backend}"
