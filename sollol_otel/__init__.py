"""sollol-otel: every routing decision of an LLM load balancer as OpenTelemetry data, live in Redis.

The public API keeps SOLLOL 0.9.66's names, so `from sollol.routing_logger import
get_routing_logger` becomes `from sollol_otel import get_routing_logger` and nothing else changes.
"""

from .bridge_metrics import BridgeStats
from .configuration import (
    bridge_stats,
    configure,
    enable_console_routing_log,
    force_flush,
    get_routing_logger,
    shutdown,
)
from .events import EventType, RoutingEvent
from .logger import RoutingLogger

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
