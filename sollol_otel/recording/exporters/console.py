"""Console exporter: each routing decision printed to stderr in SOLLOL's console layout.

Runs on the realtime processor's thread, so printing never slows the router. Text goes
through the same safe renderer as `sollol-otel tail`, so a hostile model name cannot reach the
terminal as escape codes, and a None model or backend prints as N/A instead of raising.
Colour follows tail's rules: on a terminal, unless NO_COLOR is set.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from sollol_otel.display import ColorMode, colours, console_for, render_ansi
from sollol_otel.recording.exporters.redis_bridge import wire_events
from sollol_otel.wire import event_from_fields


class ConsoleRoutingExporter(LogRecordExporter):
    """Prints while `active`; SOLLOL lets console output be switched at run time."""

    def __init__(self, identity: Callable[[], Mapping[str, Any]], out: TextIO | None = None) -> None:
        self._identity = identity
        self._out = out or sys.stderr
        self._colour = colours(console_for(self._out, ColorMode.auto))
        self.active = True

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self.active:
            blocks = [
                render_ansi(event_from_fields(fields), color=self._colour) + "\n\n"
                for fields in wire_events(batch, self._identity())
            ]
            self._out.write("".join(blocks))
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self._out.flush()
        return True

    def shutdown(self) -> None:
        self.active = False
