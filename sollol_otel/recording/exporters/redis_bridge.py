"""The bridge exporter: routing log records become SOLLOL wire events in Redis."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from sollol_otel.attributes import to_wire_fields
from sollol_otel.diagnostics import Trouble
from sollol_otel.events import event_type_of
from sollol_otel.redis.delivery import NOT_CONVERTED
from sollol_otel.redis.writer import RedisWriter

_log = logging.getLogger(__name__)


def wire_events(
    batch: Sequence[ReadableLogRecord],
    identity: Mapping[str, Any],
    failed: Callable[[Exception], None] | None = None,
) -> list[dict[str, Any]]:
    """The wire form of each routing record, named by `identity`: this process records them, whatever
    the provider's resource says (the SDK's gives `service.instance.id` a bare UUID, renewed at a fork,
    and keeps the parent's pid); the resource adds the rest (the service name).

    A record that cannot be converted is left out alone and told to `failed`.
    """
    events = []
    merged: dict[int, Mapping[str, Any]] = {}  # records of one provider share one Resource
    for record in batch:
        log_record = record.log_record
        event_type = event_type_of(log_record.event_name)
        if event_type is None:
            continue
        try:
            resource = merged.get(id(record.resource))
            if resource is None:
                resource = {**record.resource.attributes, **identity} if record.resource else identity
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
        except Exception as error:  # an odd record from someone else's code (a timestamp out of range)
            if failed is not None:
                failed(error)
    return events


class RedisBridgeExporter(LogRecordExporter):
    """Hands each batch to the Redis writer and returns at once; the writer owns delivery.

    `identity` is called per batch: a forked child's events carry the child's instance id.
    """

    def __init__(self, writer: RedisWriter, identity: Callable[[], Mapping[str, Any]]) -> None:
        self._writer = writer
        self._identity = identity
        self._trouble = Trouble(_log, unit="routing records")

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self._writer.submit(wire_events(batch, self._identity(), self._not_converted))
        return LogRecordExportResult.SUCCESS

    def _not_converted(self, error: Exception) -> None:
        self._writer.drop(1, NOT_CONVERTED)
        self._trouble.report(
            NOT_CONVERTED, "a routing log record could not be converted for Redis (%r); it was dropped", error
        )

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._writer.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        self._writer.close()
