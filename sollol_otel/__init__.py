"""sollol-otel: every routing decision of an LLM load balancer as OpenTelemetry data, live in Redis.

The public API keeps SOLLOL 0.9.66's names, so `from sollol.routing_logger import
get_routing_logger` becomes `from sollol_otel import get_routing_logger` and nothing else changes.

The recording API is imported on first use (PEP 562): readers such as `sollol-otel tail` start
without loading the OpenTelemetry SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sollol_otel.events import EventType, RoutingEvent

if TYPE_CHECKING:
    from sollol_otel.recording.logger import RoutingLogger
    from sollol_otel.recording.pipeline import (
        bridge_stats,
        configure,
        enable_console_routing_log,
        force_flush,
        get_routing_logger,
        shutdown,
    )
    from sollol_otel.redis.delivery import BridgeStats

_LAZY = {
    "BridgeStats": "redis.delivery",
    "RoutingLogger": "recording.logger",
    "bridge_stats": "recording.pipeline",
    "configure": "recording.pipeline",
    "enable_console_routing_log": "recording.pipeline",
    "force_flush": "recording.pipeline",
    "get_routing_logger": "recording.pipeline",
    "shutdown": "recording.pipeline",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sollol_otel' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BridgeStats",
    "EventType",
    "RoutingEvent",
    "RoutingLogger",
    "bridge_stats",
    "configure",
    "enable_console_routing_log",
    "force_flush",
    "get_routing_logger",
    "shutdown",
]
