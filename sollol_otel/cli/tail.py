"""`sollol-otel tail`: routing events from the stream, history then live, with nothing lost between.

History is read newest-first in pages until N events match the filter, which also places the
reader at the end of the stream; following then continues from exactly that id (never `$`),
so `--history N --follow` neither drops nor repeats an event written in between. Gaps the
reader cannot fill (trimmed, or lost with a restarted Redis) are said on stderr with their
count, and a Redis that stays away longer than `--reconnect-timeout` ends the command with exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO

import redis
import redis.asyncio
from rich.text import Text

from sollol_otel.cli.exit_codes import EXIT_OK, EXIT_REDIS
from sollol_otel.cli.output import OutputFormat, json_text
from sollol_otel.display import ColorMode, colours, console_for, render_ansi, safe_text
from sollol_otel.filters import EPOCH, EventFilter, Explainer, TimeRange
from sollol_otel.redis.client import CONNECTION_ERRORS
from sollol_otel.redis.clock import id_ms
from sollol_otel.redis.stream import (
    Gap,
    ReaderLost,
    StreamEntry,
    StreamReader,
    id_for_time,
    next_id,
    reader_client,
    stream_key,
)
from sollol_otel.redis.urls import redact_url
from sollol_otel.wire import Skipped

#: History page sizes: one round trip covers a default-sized stream, a small N reads little.
MIN_PAGE, MAX_PAGE = 1000, 10_000
#: Most entries `--history` keeps in memory; past that it reads the range again, forwards, printing
#: page by page, so its memory does not grow with N.
MAX_HELD = 10_000


@dataclass(frozen=True)
class TailOptions:
    redis_url: str
    stream: str
    history: int | None = None
    follow: bool = False
    since: datetime | None = None
    event_filter: EventFilter = field(default_factory=EventFilter)
    output: OutputFormat = OutputFormat.text
    color: ColorMode = ColorMode.auto
    reconnect_timeout: float = 60.0

    @property
    def live(self) -> bool:
        """Without --history the command follows, as SOLLOL's viewer did."""
        return self.follow or self.history is None


def json_line(entry_id: str, fields: dict[str, Any]) -> str:
    """One event for jq: its fields as written, plus `stream_id` to resume from."""
    return json_text({**fields, "stream_id": entry_id})


@dataclass
class Counts:
    shown: int = 0
    filtered: int = 0
    skipped: int = 0
    missed: int = 0
    missed_unknown: bool = False

    def summary(self) -> str:
        missed = f"{self.missed}{'+' if self.missed_unknown else ''}"
        return (
            f"{self.shown} shown, {self.filtered} filtered out, {self.skipped} skipped as malformed, "
            f"{missed} missed"
        )


class Output:
    """Events to stdout, everything else (notices, gaps, the summary) to stderr."""

    def __init__(self, options: TailOptions, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._json = options.output is OutputFormat.json
        self._filter = options.event_filter
        self._colour = colours(console_for(out, options.color))
        self._status = console_for(err, options.color)
        self.counts = Counts()
        #: Watches the history, while it is read, for why nothing matched.
        self.explainer: Explainer | None = None

    def notice(self, message: str, style: str = "dim") -> None:
        self._out.flush()  # keep notices in place among the events when both go to one terminal
        self._status.print(Text(message, style=style))

    def entries(self, batch: list[StreamEntry | Gap]) -> None:
        """Writes one batch and flushes it, so a pipe sees live events as they come."""
        lines: list[str] = []
        for item in batch:
            if isinstance(item, Gap):
                self._flush(lines)
                self.gap(item)
            elif isinstance(item.item, Skipped):
                self._flush(lines)
                self.counts.skipped += 1
                self.notice(f"skipped entry {safe_text(item.id)}: {safe_text(item.item.reason)}")
            elif not self._filter.matches(item.item):
                self.counts.filtered += 1
                if self.explainer is not None:
                    self.explainer.add(item.item)
            else:
                self.counts.shown += 1
                self.explainer = None  # something matched: nothing to explain
                if self._json:
                    lines.append(json_line(item.id, dict(item.item.fields)) + "\n")
                else:
                    lines.append(render_ansi(item.item, color=self._colour) + "\n\n")
        self._flush(lines)

    def _flush(self, lines: list[str]) -> None:
        if lines:
            self._out.write("".join(lines))
            lines.clear()
        self._out.flush()

    def watch_history(self) -> None:
        self.explainer = Explainer(self._filter)

    def explain(self, since: datetime | None) -> None:
        """After the history: when it showed nothing, why (on stderr); live events are not watched."""
        if self.explainer is not None and self.counts.shown == 0:
            for hint in self.explainer.hints(TimeRange(since=since)):
                self.notice(f"nothing matched: {safe_text(hint)}", style="yellow")
        self.explainer = None

    def gap(self, gap: Gap) -> None:
        if gap.missed is None:
            self.counts.missed_unknown = True
        else:
            self.counts.missed += gap.missed
        self.notice(f"⚠ {gap.explain()}", style="bold yellow")

    def connection(self, connected: bool, detail: str) -> None:
        if connected:
            self.notice("Redis is back; resuming from the last event shown", style="green")
        else:
            self.notice(f"⚠ lost Redis ({safe_text(detail)}); reconnecting…", style="bold yellow")


async def _history(
    client: redis.asyncio.Redis, reader: StreamReader, options: TailOptions, output: Output
) -> None:
    """The last N matching events (all since --since when no N), oldest first.

    Reading back finds where they start: the Nth match from the end. What was read is printed
    from memory when it fits in MAX_HELD entries; otherwise the range is read again forwards and
    printed page by page. What the stream no longer holds comes first, from the history.
    """
    since = id_for_time(options.since) if options.since else None
    wanted = options.history
    if wanted == 0:
        await reader.start_live()
        return
    page = wanted if wanted and options.event_filter.is_empty else max(wanted or 0, MIN_PAGE)
    page = min(page, MAX_PAGE)
    held: list[StreamEntry] | None = []  # what was read, oldest first, while it fits
    start = end = None  # the oldest and the newest entry to show
    output.watch_history()
    matched = 0
    pages = reader.pages_back(page, since=since)
    async with contextlib.aclosing(pages):
        async for entries in pages:
            end = end or entries[-1].id
            for entry in reversed(entries):
                if matched == wanted:
                    break
                start = entry.id
                matched += not isinstance(entry.item, Skipped) and options.event_filter.matches(entry.item)
            if held is not None:
                held[:0] = entries
                held = held if len(held) <= MAX_HELD else None
            if matched == wanted:
                break
    edge = start or next_id(reader.position.last_id)
    if (wanted is None or matched < wanted) and await _stream_starts_after(client, options):
        await _older(client, options, output, edge, None if wanted is None else wanted - matched)
    if start is not None and end is not None:
        if held is not None:
            first = stream_key(start)
            output.entries([entry for entry in held if stream_key(entry.id) >= first])
        else:
            async for entries in reader.pages_forward(page, start=start, end=end):
                output.entries(list(entries))
    output.explain(options.since)


async def _stream_starts_after(client: redis.asyncio.Redis, options: TailOptions) -> bool:
    """Whether the stream begins after --since (or at all): only then is the history asked, so
    `tail` of the hot window never loads the history engine."""
    first: Any = await client.xrange(options.stream, count=1)
    if not first or options.since is None:
        return True
    return id_ms(first[0][0]) > int(options.since.timestamp() * 1000)


async def _older(
    client: redis.asyncio.Redis, options: TailOptions, output: Output, edge: str, wanted: int | None
) -> None:
    """Matching events before the id `edge` (the oldest the stream gave) from the history: the
    newest `wanted` of them, or all since --since; oldest first."""
    from sollol_otel.history.query import History  # DuckDB only when the stream does not reach back

    history = await History.open(client, options.stream)
    if history is None:
        return
    since = TimeRange(since=options.since)
    if wanted is not None:
        output.entries(
            list(reversed(await history.page(options.event_filter, since, before=edge, limit=wanted)))
        )
        return
    limit = stream_key(edge)
    until = EPOCH + timedelta(milliseconds=limit[0] + 1)
    batch: list[StreamEntry | Gap] = []
    async for entry in history.events(options.event_filter, TimeRange(options.since, until)):
        if stream_key(entry.id) >= limit:
            break
        batch.append(entry)
        if len(batch) >= MIN_PAGE:
            output.entries(batch)
            batch = []
    output.entries(batch)


async def _run(options: TailOptions, output: Output) -> int:
    where = f"{safe_text(options.stream)} at {redact_url(options.redis_url)}"
    client: redis.asyncio.Redis | None = None
    try:
        try:
            client = await reader_client(options.redis_url, options.stream)
            reader = StreamReader(client, options.stream)
            if options.history is None and options.since is None:
                await reader.start_live()
            else:
                await _history(client, reader, options, output)
        except CONNECTION_ERRORS as exc:
            output.notice(f"cannot read {where}: {safe_text(exc)}", style="bold red")
            return EXIT_REDIS
        if not options.live:
            return EXIT_OK
        output.notice(f"following {where} (filters: {safe_text(options.event_filter.label())}); Ctrl+C stops")
        try:
            async for batch in reader.follow(
                give_up_after=options.reconnect_timeout, on_connection=output.connection
            ):
                output.entries(batch)
        except ReaderLost as exc:
            output.notice(f"gave up on {where}: {safe_text(exc)}", style="bold red")
            return EXIT_REDIS
        return EXIT_OK
    except redis.ResponseError as exc:  # e.g. the key holds something other than a stream
        output.notice(f"cannot read {where}: {safe_text(exc)}", style="bold red")
        return EXIT_REDIS
    finally:
        if client is not None:
            await client.aclose()


def run(options: TailOptions) -> int:
    """Runs the command to its end (history mode), Ctrl+C/SIGTERM, or a lost Redis; the exit code."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")  # a non-UTF-8 locale must not crash the viewer
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    output = Output(options, sys.stdout, sys.stderr)
    try:
        code = _run_in_thread(options, output)
    except KeyboardInterrupt:
        code = EXIT_OK
    except BrokenPipeError:  # `| head` closed the pipe: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    output.notice(output.counts.summary())
    return code


def _run_in_thread(options: TailOptions, output: Output) -> int:
    """The event loop runs in a daemon thread, so Ctrl+C never has to cancel a Redis call.

    redis-py (8.1, Python 3.11) can swallow a task's cancellation inside a socket write
    guarded by its timeout, which leaves `asyncio.run` waiting forever after Ctrl+C.
    """
    outcome: list[int | BaseException] = []

    def loop() -> None:
        try:
            outcome.append(asyncio.run(_run(options, output)))
        except BaseException as exc:  # handed to the main thread, which raises it
            outcome.append(exc)

    thread = threading.Thread(target=loop, name="sollol-otel-tail", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)  # short waits keep the main thread responsive to Ctrl+C and SIGTERM
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]
