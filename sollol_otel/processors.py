"""A log record processor for real time: it wakes on the first record and drains the queue.

The SDK's BatchLogRecordProcessor waits up to a second before exporting; routing events must
reach Redis within milliseconds. This one exports as soon as a record arrives and batches by
itself under load (whatever piled up while the last export ran goes out together). It costs
the caller one deque append, never blocks it, and drops the oldest record (counted) when full.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource

from .events import EVENT_NAME_PREFIX

_log = logging.getLogger(__name__)
_NO_RESOURCE = Resource.get_empty()


class RealtimeLogRecordProcessor(LogRecordProcessor):
    """Hands routing log records to its exporters on a background thread, with no wait."""

    def __init__(
        self,
        exporters: Sequence[LogRecordExporter],
        *,
        event_name_prefix: str = EVENT_NAME_PREFIX,
        max_queue_size: int = 10_000,
        max_export_batch_size: int = 512,
    ) -> None:
        self._exporters = tuple(exporters)
        self._prefix = event_name_prefix
        self._queue: collections.deque[ReadWriteLogRecord] = collections.deque(maxlen=max_queue_size)
        self._batch_size = max_export_batch_size
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="sollol-otel-realtime", daemon=True)
        self._thread.start()

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        name = log_record.log_record.event_name
        if self._stopping or not name or not name.startswith(self._prefix):
            return
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.dropped += 1  # the deque drops the oldest itself
        queue.append(log_record)
        if not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        queue = self._queue
        while True:
            self._wake.wait()
            self._wake.clear()  # cleared before draining: a record appended after this wakes us again
            self._idle.clear()
            while queue:
                batch: list[ReadableLogRecord] = []
                while queue and len(batch) < self._batch_size:
                    record = queue.popleft()
                    batch.append(
                        ReadableLogRecord(
                            log_record=record.log_record,
                            resource=record.resource or _NO_RESOURCE,
                            instrumentation_scope=record.instrumentation_scope,
                            limits=record.limits,
                        )
                    )
                self._export(batch)
            self._idle.set()
            if self._stopping:
                return

    def _export(self, batch: Sequence[ReadableLogRecord]) -> None:
        for exporter in self._exporters:
            try:
                exporter.export(batch)
            except Exception:
                _log.exception("routing event exporter %s failed", type(exporter).__name__)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        while self._queue or not self._idle.is_set():
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            self._idle.wait(min(0.01, max(0.0, deadline - time.monotonic())))
        flushed = True
        for exporter in self._exporters:
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            flushed = exporter.force_flush(remaining) and flushed
        return flushed

    def shutdown(self) -> None:
        if self._stopping:
            return
        self.force_flush(5_000)
        self._stopping = True
        self._wake.set()
        self._thread.join(5)
        for exporter in self._exporters:
            exporter.shutdown()  # type: ignore[no-untyped-call]
