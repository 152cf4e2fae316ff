"""`sollol-otel collector`: an OTLP/HTTP receiver that writes routing events into Redis."""

from sollol_otel.receiver.app import ReceiverConfig, create_app

__all__ = ["ReceiverConfig", "create_app"]
