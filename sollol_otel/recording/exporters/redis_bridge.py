"""The bridge exporter: routing log records become SOLLOL wire events in Redis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from sollol_otel.attributes import to_wire_fields
from sollol_otel.events import event_type_of
from sollol_otel.redis.writer import RedisWriter


def wire_events(batch: Sequence[ReadableLogRecord], identity: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The wire form of each routing record; `identity` fills resource keys the provider lacks."""
    events = []
    merged: dict[int, Mapping[str, Any]] = {}  # records of one provider share one Resource
    for record in batch:
        log_record = record.log_record
        event_type = event_type_of(log_record.event_name)
        if event_type is None:
            continue
        resource = merged.get(id(record.resource))
        if resource is None:
            resource = {**identity, **record.resource.attributes} if record.resource else identity
            merged[id(record.resource)] = resource
        events.append(
            to_wire_fields(
                event_type,
                timestamp_ns=log_record.timestamp or log_record.observed_timestamp,
                attributes=log_record.attributes or {},
                resource=resource,
                body=log_record.body,
                trace_id=log_record.trace_id or 0,
                span_id=log_record.span_id or 0,
            )
        )
    return events


class RedisBridgeExporter(LogRecordExporter):
    """Hands each batch to the Redis writer and returns at once; the writer owns delivery."""

    def __init__(self, writer: RedisWriter, identity: Mapping[str, Any]) -> None:
        self._writer = writer
        self._identity = dict(identity)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self._writer.submit(wire_events(batch, self._identity))
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._writer.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        self._writer.close()
