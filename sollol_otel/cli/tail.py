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
import itertools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO, cast

import redis
import redis.asyncio
from rich.text import Text

from sollol_otel.cli.exit_codes import EXIT_OK, EXIT_REDIS
from sollol_otel.cli.output import OutputFormat, json_text
from sollol_otel.display import (
    ColorMode,
    colours,
    console_for,
    render_ansi,
    render_line,
    safe_text,
    time_zone,
)
from sollol_otel.events import RoutingEvent
from sollol_otel.filters import EventFilter, Explainer, TimeRange
from sollol_otel.redis.client import CONNECTION_ERRORS
from sollol_otel.redis.stream import (
    Gap,
    ReaderLost,
    StreamEntry,
    StreamReader,
    id_for_time,
    reader_client,
)
from sollol_otel.redis.urls import redact_url
from sollol_otel.wire import Skipped

#: History page size: a page's decoded events are the command's largest transient memory (pages of
#: 2,000 took 20 MB over its imports for `--history 10000`, pages of 500 take 8), while a round trip
#: more costs well under a millisecond next to the decoding.
PAGE = 500
#: Most bytes of rendered history `--history` keeps while it reads back (about 30,000 events);
#: past that it reads the range again, forwards, printing page by page, so its memory does not
#: grow with N.
MAX_HELD_BYTES = 8_000_000


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

    @property
    def where(self) -> str:
        """The stream and the Redis read, as said to the user (the password redacted)."""
        return f"{safe_text(self.stream)} at {redact_url(self.redis_url)}"


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


@dataclass(frozen=True)
class Notice:
    """A line for stderr, kept in its place among the events it was found between."""

    message: str
    style: str = "dim"


#: Events made ready to print: text for stdout, notices for stderr, in stream order.
Rendered = list[str | Notice]
#: The same, held while the history is read back.
Packed = list[bytes | Notice]


class Output:
    """Events to stdout, everything else (notices, gaps, the summary) to stderr."""

    def __init__(self, options: TailOptions, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._filter = options.event_filter
        colour = colours(console_for(out, options.color))
        self._render: Callable[[str, RoutingEvent], str] = {
            OutputFormat.json: lambda entry_id, event: json_line(entry_id, dict(event.fields)) + "\n",
            OutputFormat.line: lambda _, event: render_line(event, color=colour) + "\n",
            OutputFormat.text: lambda _, event: render_ansi(event, color=colour) + "\n\n",
        }[options.output]
        self._status = console_for(err, options.color)
        self.counts = Counts()
        #: Watches the history, while it is read, for why nothing matched.
        self.explainer: Explainer | None = None

    def notice(self, message: str, style: str = "dim") -> None:
        self._out.flush()  # keep notices in place among the events when both go to one terminal
        self._status.print(Text(message, style=style))

    def entries(self, batch: Sequence[StreamEntry | Gap]) -> None:
        """Writes one batch and flushes it, so a pipe sees live events as they come."""
        self.emit(self.render(batch))

    def render(self, batch: Sequence[StreamEntry | Gap]) -> Rendered:
        """The batch made ready to print, counted; nothing is written yet."""
        rendered: Rendered = []
        for item in batch:
            if isinstance(item, Gap):
                rendered.append(self._gap(item))
            elif isinstance(item.item, Skipped):
                self.counts.skipped += 1
                rendered.append(Notice(f"skipped entry {safe_text(item.id)}: {safe_text(item.item.reason)}"))
            elif not self._filter.matches(item.item):
                self.counts.filtered += 1
                if self.explainer is not None:
                    self.explainer.add(item.item)
            else:
                self.counts.shown += 1
                self.explainer = None  # something matched: nothing to explain
                rendered.append(self._render(item.id, item.item))
        return rendered

    def emit(self, rendered: Rendered | Packed) -> None:
        """Writes what `render` made, events in runs, and flushes."""
        run: list[str] = []
        for item in rendered:
            if isinstance(item, Notice):
                self._write(run)
                self.notice(item.message, item.style)
            else:
                run.append(item if isinstance(item, str) else item.decode("utf-8", "surrogatepass"))
        self._write(run)
        self._out.flush()

    def _write(self, run: list[str]) -> None:
        if run:
            self._out.write("".join(run))
            run.clear()

    def watch_history(self) -> None:
        self.counts = Counts()
        self.explainer = Explainer(self._filter)

    def explain(self, since: datetime | None, where: str) -> None:
        """After the history: when it showed nothing, why and where from (on stderr); live events
        are not watched."""
        if self.explainer is not None and self.counts.shown == 0:
            self.notice(f"no event shown from {where}", style="yellow")
            for hint in self.explainer.hints(TimeRange(since=since)):
                self.notice(f"nothing matched: {safe_text(hint)}", style="yellow")
        self.explainer = None

    def _gap(self, gap: Gap) -> Notice:
        if gap.missed is None:
            self.counts.missed_unknown = True
        else:
            self.counts.missed += gap.missed
        return Notice(f"⚠ {gap.explain()}", style="bold yellow")

    def connection(self, connected: bool, detail: str) -> None:
        if connected:
            self.notice("Redis is back; resuming from the last event shown", style="green")
        else:
            self.notice(f"⚠ lost Redis ({safe_text(detail)}); reconnecting…", style="bold yellow")


def _packed(rendered: Rendered) -> Packed:
    """Each run of event text as one UTF-8 string: one allocation per run instead of thousands of
    small ones pinning the memory of the pages they were rendered between, at half the size of
    text holding box-drawing characters."""
    packed: Packed = []
    for is_notice, items in itertools.groupby(rendered, key=lambda item: isinstance(item, Notice)):
        if is_notice:
            packed.extend(cast(Iterator[Notice], items))
        else:
            packed.append("".join(cast(Iterator[str], items)).encode("utf-8", "surrogatepass"))
    return packed


async def _history(reader: StreamReader, options: TailOptions, output: Output) -> None:
    """The last N matching events (all since --since when no N), oldest first.

    Reading back finds where they start: the Nth match from the end. Each page is rendered as
    it is read and only the text is kept (a fraction of the decoded events' memory), then
    printed oldest first; past MAX_HELD_BYTES the range is read again forwards and printed page
    by page.
    """
    since = id_for_time(options.since) if options.since else None
    wanted = options.history
    if wanted == 0:
        await reader.start_live()
        return
    page = min(wanted, PAGE) if wanted and options.event_filter.is_empty else PAGE
    held: list[Packed] | None = []  # rendered pages, newest first, while they fit
    held_bytes = 0
    start = end = None  # the oldest and the newest entry to show
    output.watch_history()
    matched = 0
    pages = reader.pages_back(page, since=since)
    async with contextlib.aclosing(pages):
        async for entries in pages:
            end = end or entries[-1].id
            first = len(entries)
            for entry in reversed(entries):
                if matched == wanted:
                    break
                first -= 1
                start = entry.id
                matched += not isinstance(entry.item, Skipped) and options.event_filter.matches(entry.item)
            if held is not None:
                held.append(_packed(output.render(entries[first:])))
                held_bytes += sum(len(text) for text in held[-1] if isinstance(text, bytes))
                if held_bytes > MAX_HELD_BYTES:
                    held = None
            if matched == wanted:
                break
    if start is not None and end is not None:
        if held is not None:
            for rendered in reversed(held):
                output.emit(rendered)
        else:
            output.watch_history()  # counted again as printed
            async for entries in reader.pages_forward(page, start=start, end=end):
                output.entries(entries)
    output.explain(options.since, options.where)


async def _run(options: TailOptions, output: Output) -> int:
    where = options.where
    client: redis.asyncio.Redis | None = None
    try:
        try:
            client = await reader_client(options.redis_url, options.stream)
            reader = StreamReader(client, options.stream)
            if options.history is None and options.since is None:
                await reader.start_live()
            else:
                await _history(reader, options, output)
        except CONNECTION_ERRORS as exc:
            output.notice(f"cannot read {where}: {safe_text(exc)}", style="bold red")
            return EXIT_REDIS
        if not options.live:
            return EXIT_OK
        output.notice(
            f"following {where} (filters: {safe_text(options.event_filter.label())}; "
            f"times in {time_zone()}); Ctrl+C stops"
        )
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
    zone = "" if options.live else f"; times in {time_zone()}"  # following said it when it began
    output.notice(f"{output.counts.summary()} from {options.where}{zone}")
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
