"""A running receiver as the receiver tests see it (kept out of conftest so tests can import it)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
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

    def counted(self, sample: str, **labels: str) -> float:
        """A sample of the receiver's /metrics, as Prometheus reads it (0 when absent)."""
        text = self.receiver.metrics.exposition().decode()
        for family in text_string_to_metric_families(text):
            for found in family.samples:
                if found.name == sample and found.labels == labels:
                    return float(found.value)
        return 0.0
