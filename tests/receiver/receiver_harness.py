"""A running receiver as the receiver tests see it (kept out of conftest so tests can import it)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette

from sollol_otel.receiver.app import Receiver


@dataclass
class RunningReceiver:
    url: str
    app: Starlette

    @property
    def receiver(self) -> Receiver:
        receiver: Receiver = self.app.state.receiver
        return receiver

    def flush(self) -> None:
        """Wait until everything the receiver accepted is in Redis."""
        assert self.receiver.writer.flush(5.0)
