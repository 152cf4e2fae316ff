"""sollol-otel: every routing decision of an LLM load balancer as OpenTelemetry data, live in Redis.

The public API keeps SOLLOL 0.9.66's names, so `from sollol.routing_logger import
get_routing_logger` becomes `from sollol_otel import get_routing_logger` and nothing else changes.

The recording API is imported on first use (PEP 562): readers such as `sollol-otel tail` start
without loading the OpenTelemetry SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .events import EventType, RoutingEvent

if TYPE_CHECKING:
    from .bridge_metrics import BridgeStats
    from .configuration import (
        bridge_stats,
        configure,
        enable_console_routing_log,
        force_flush,
        get_routing_logger,
        shutdown,
    )
    from .logger import RoutingLogger

_LAZY = {
    "BridgeStats": "bridge_metrics",
    "RoutingLogger": "logger",
    "bridge_stats": "configuration",
    "configure": "configuration",
    "enable_console_routing_log": "configuration",
    "force_flush": "configuration",
    "get_routing_logger": "configuration",
    "shutdown": "configuration",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sollol_otel' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
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
