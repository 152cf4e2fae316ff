"""`sollol-otel collector`: an OTLP/HTTP receiver that writes routing events into Redis."""

from .app import ReceiverConfig, create_app

__all__ = ["ReceiverConfig", "create_app"]
