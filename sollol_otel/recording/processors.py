"""A log record processor for real time: it wakes on the first record and drains the queue.

The SDK's BatchLogRecordProcessor waits up to a second before exporting; routing events must
reach Redis within milliseconds. This one exports as soon as a record arrives and batches by
itself under load (whatever piled up while the last export ran goes out together), through a
`Handoff`: one deque append for the emitting thread, oldest dropped (and counted) when full.
A forked child starts with an empty queue and its own thread on first use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource

from sollol_otel.events import event_type_of
from sollol_otel.recording.handoff import Handoff

_log = logging.getLogger(__name__)
_NO_RESOURCE = Resource.get_empty()


class RealtimeLogRecordProcessor(LogRecordProcessor):
    """Hands routing log records to its exporters on a background thread, with no wait."""

    def __init__(
        self,
        exporters: Sequence[LogRecordExporter],
        *,
        max_queue_size: int = 10_000,
        max_export_batch_size: int = 512,
    ) -> None:
        self._exporters = tuple(exporters)
        self.handoff: Handoff[ReadWriteLogRecord] = Handoff(
            self._export,
            name="sollol-otel-realtime",
            max_size=max_queue_size,
            batch_size=max_export_batch_size,
        )

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if event_type_of(log_record.log_record.event_name) is not None:  # the bridge's own rule
            self.handoff.submit(log_record)

    def _export(self, records: Sequence[ReadWriteLogRecord]) -> None:
        batch = [
            ReadableLogRecord(
                log_record=record.log_record,
                resource=record.resource or _NO_RESOURCE,
                instrumentation_scope=record.instrumentation_scope,
                limits=record.limits,
            )
            for record in records
        ]
        for exporter in self._exporters:
            try:
                exporter.export(batch)
            except Exception:
                _log.exception("routing event exporter %s failed", type(exporter).__name__)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        flushed = self.handoff.flush(timeout_millis / 1000)
        for exporter in self._exporters:
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            flushed = exporter.force_flush(remaining) and flushed
        return flushed

    def shutdown(self) -> None:
        self.handoff.close(5.0)
        for exporter in self._exporters:
            exporter.shutdown()  # type: ignore[no-untyped-call]
