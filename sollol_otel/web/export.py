"""`GET /api/export`: the events the page's filter and time range select, as NDJSON or CSV.

Streamed a page at a time, oldest first, so an export of a long range never sits in memory; the
range ends at the stream's end as it was when the export began, so a busy stream cannot make it
endless. The events come from the history (segments and the stream's newest entries) once an
indexer has written one, so an export reaches as far back as the history does.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import redis.asyncio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sollol_otel.events import RoutingEvent
from sollol_otel.filters import EventFilter, TimeRange
from sollol_otel.redis.client import CONNECTION_ERRORS
from sollol_otel.redis.clock import redis_now_ms
from sollol_otel.redis.stream import StreamReader
from sollol_otel.web.api import error, unavailable
from sollol_otel.web.backlog import range_bounds
from sollol_otel.web.counts import bounded_range, covered_to
from sollol_otel.web.from_history import open_history
from sollol_otel.web.params import BadParameter, event_filter, time_range
from sollol_otel.web.state import state_of

#: Entries read per round trip.
PAGE = 2000
#: The CSV's columns: the stream id, then the fields every SOLLOL event has, then the whole event.
COLUMNS = ("stream_id", "timestamp", "event_type", "model", "backend", "node", "reason", "instance_id",
           "trace_id", "message", "event")  # fmt: skip
#: A spreadsheet runs a cell that starts with one of these as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


async def matching_pages(
    client: redis.asyncio.Redis, stream: str, flt: EventFilter, span: TimeRange
) -> AsyncIterator[list[tuple[str, RoutingEvent]]]:
    """The routing events in the range that match, oldest first, a page at a time: from the history
    (its segments and the stream's newest entries) once there is one, else from the stream."""
    span = bounded_range(span, await redis_now_ms(client), None)
    history = await open_history(client, stream)
    if history is not None:
        page: list[tuple[str, RoutingEvent]] = []
        async for entry in history.events(flt, span):
            if isinstance(entry.item, RoutingEvent):
                page.append((entry.id, entry.item))
            if len(page) >= PAGE:
                yield page
                page = []
        yield page
        return
    since, _ = range_bounds(span)
    reader = StreamReader(client, stream)
    async for entries in reader.pages_forward(
        PAGE, start=since or "-", end=await covered_to(client, stream, span)
    ):
        yield [
            (entry.id, entry.item)
            for entry in entries
            if isinstance(entry.item, RoutingEvent) and flt.matches(entry.item)
        ]


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a `'` before it."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_rows(page: list[tuple[str, RoutingEvent]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for entry_id, event in page:
        fields = event.fields
        whole = json.dumps(fields, default=str, ensure_ascii=False)
        values = {
            **fields,
            "stream_id": entry_id,
            "node": event.node,
            "message": event.message,
            "event": whole,
        }
        writer.writerow([safe_cell(values.get(name)) for name in COLUMNS])
    return out.getvalue()


def ndjson_rows(page: list[tuple[str, RoutingEvent]]) -> str:
    """Each event as written, with its stream id, one JSON object a line (as "Copy as JSON")."""
    return "".join(
        json.dumps({"stream_id": entry_id, **event.fields}, default=str, ensure_ascii=False) + "\n"
        for entry_id, event in page
    )


async def export(request: Request) -> Response:
    """`GET /api/export?format=ndjson|csv` with the filters and `since`/`until` of every endpoint."""
    state = state_of(request)
    params = request.query_params
    fmt = params.get("format", "ndjson")
    if fmt not in FORMATS:
        return error(400, f"format={fmt[:16]!r}: use ndjson or csv")
    try:
        flt = event_filter(params)
        span = time_range(params)
    except BadParameter as exc:
        return error(400, str(exc))
    stream = state.settings.stream
    try:
        client = await state.client.get()
        pages = matching_pages(client, stream, flt, span)
        first = await anext(pages, None)  # Redis's refusal is an error status, not a cut-off file
    except CONNECTION_ERRORS as exc:
        return unavailable(exc, state.settings.redis_url)
    rows = csv_rows if fmt == "csv" else ndjson_rows

    async def body() -> AsyncIterator[str]:
        if fmt == "csv":
            yield ",".join(COLUMNS) + "\r\n"
        if first is None:
            return
        yield rows(first)
        async for page in pages:
            if page:
                yield rows(page)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"sollol-routing-{stamp}.{fmt}"
    return StreamingResponse(
        body(),
        media_type=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
