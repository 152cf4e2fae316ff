"""Console exporter: each routing decision printed to stderr in the seed's layout.

Runs on the realtime processor's thread, so printing never slows the router. Text goes
through the same safe renderer as `sollol-otel tail`, so a hostile model name cannot reach the
terminal as escape codes, and a None model or backend prints as N/A instead of raising.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from rich.console import Console

from ..render import render_event
from ..wire import event_from_fields
from .redis_bridge import wire_events


class ConsoleRoutingExporter(LogRecordExporter):
    """Prints while `active`; SOLLOL lets console output be switched at run time."""

    def __init__(self, identity: Mapping[str, Any], console: Console | None = None) -> None:
        self._identity = dict(identity)
        self._console = console or Console(file=sys.stderr, highlight=False, soft_wrap=True)
        self.active = True

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self.active:
            for fields in wire_events(batch, self._identity):
                self._console.print(render_event(event_from_fields(fields)))
                self._console.print()
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self._console.file.flush()
        return True

    def shutdown(self) -> None:
        self.active = False
