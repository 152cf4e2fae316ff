"""`sollol-otel tail`: routing events from the stream, history then live, with nothing lost between.

History is read newest-first in pages until N events match the filter, which also places the
reader at the end of the stream; following then continues from exactly that id (never `$`),
so `--history N --follow` neither drops nor repeats an event written in between. Gaps the
reader cannot fill (trimmed, or lost with a restarted Redis) are said on stderr with their
count, and a Redis that stays away longer than `--reconnect-timeout` ends the command with exit 1.

`--history N` alone (filters allowed), when the stream holds the N events, is answered before
Typer, redis-py and asyncio are imported (`quick_history`): those imports were most of its time.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

from sollol_otel.cli.exit_codes import EXIT_OK, EXIT_REDIS
from sollol_otel.cli.output import OutputFormat, json_text
from sollol_otel.display import (
    ColorMode,
    colour_on,
    render_ansi,
    render_line,
    safe_text,
    styled_line,
    time_zone,
)
from sollol_otel.events import RoutingEvent
from sollol_otel.filters import EPOCH, EventFilter, Explainer, Since, TimeRange
from sollol_otel.redis.entries import Gap, StreamEntry
from sollol_otel.redis.urls import redact_url
from sollol_otel.wire import Skipped, decode

if TYPE_CHECKING:  # redis-py and asyncio load only where they are used: see `quick_history`
    import redis.asyncio

    from sollol_otel.redis import resp
    from sollol_otel.redis.stream import StreamReader

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
    since: Since | None = None
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
#: The same, held while the history is read back: runs of event text as UTF-8.
Packed = list[bytes | str | Notice]


class Output:
    """Events to stdout, everything else (notices, gaps, the summary) to stderr."""

    def __init__(self, options: TailOptions, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self.event_filter = options.event_filter
        colour = colour_on(out, options.color)
        self._render: Callable[[str, RoutingEvent], str] = {
            OutputFormat.json: lambda entry_id, event: json_line(entry_id, dict(event.fields)) + "\n",
            OutputFormat.line: lambda _, event: render_line(event, color=colour) + "\n",
            OutputFormat.text: lambda _, event: render_ansi(event, color=colour) + "\n\n",
        }[options.output]
        self._status_colour = colour_on(err, options.color)
        self.counts = Counts()
        #: Watches the history, while it is read, for why nothing matched.
        self.explainer: Explainer | None = None

    def notice(self, message: str, style: str = "dim") -> None:
        self._out.flush()  # keep notices in place among the events when both go to one terminal
        self._err.write(styled_line(message, style, color=self._status_colour))
        self._err.flush()

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
            elif not self.event_filter.matches(item.item):
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
            elif isinstance(item, bytes):
                self._write(run)
                self._write_utf8(item)
            else:
                run.append(item)
        self._write(run)
        self._out.flush()

    def _write(self, run: list[str]) -> None:
        if run:
            self._out.write("".join(run))
            run.clear()

    def _write_utf8(self, text: bytes) -> None:
        """A packed run in one write: to the binary stream under stdout when it is UTF-8 anyway."""
        binary = getattr(self._out, "buffer", None)
        if binary is None or (getattr(self._out, "encoding", "") or "").lower().replace("-", "") != "utf8":
            self._out.write(text.decode("utf-8"))
            return
        self._out.flush()
        binary.write(text)

    def watch_history(self) -> None:
        self.counts = Counts()
        self.explainer = Explainer(self.event_filter)

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
    text holding box-drawing characters, and written in one call. A run holding a lone surrogate
    (JSON can carry one) stays text, for stdout's error handler to show."""
    packed: Packed = []
    for is_notice, items in itertools.groupby(rendered, key=lambda item: isinstance(item, Notice)):
        if is_notice:
            packed.extend(cast(Iterator[Notice], items))
            continue
        text = "".join(cast(Iterator[str], items))
        try:
            packed.append(text.encode("utf-8"))
        except UnicodeEncodeError:
            packed.append(text)
    return packed


@dataclass
class _Window:
    """The history being read back, newest page first: where it starts and ends, and its pages
    rendered (each page is rendered as it is read and only the text kept, a fraction of the decoded
    events' memory) while they fit in MAX_HELD_BYTES."""

    wanted: int | None
    output: Output
    held: list[Packed] | None = field(default_factory=list)
    held_bytes: int = 0
    start: str | None = None  # the oldest and the newest entry to show
    end: str | None = None
    matched: int = 0

    def add(self, entries: list[StreamEntry]) -> bool:
        """Takes the next page back (oldest first); True once the Nth match from the end is in it."""
        self.end = self.end or entries[-1].id
        event_filter = self.output.event_filter
        first = len(entries)
        for entry in reversed(entries):
            if self.matched == self.wanted:
                break
            first -= 1
            self.start = entry.id
            self.matched += not isinstance(entry.item, Skipped) and event_filter.matches(entry.item)
        if self.held is not None:
            self.held.append(_packed(self.output.render(entries[first:])))
            self.held_bytes += sum(len(text) for text in self.held[-1] if not isinstance(text, Notice))
            if self.held_bytes > MAX_HELD_BYTES:
                self.held = None
        return self.matched == self.wanted

    def emit(self) -> None:
        """Prints the held pages, oldest first."""
        for rendered in reversed(self.held or []):
            self.output.emit(rendered)


def _page(options: TailOptions) -> int:
    wanted = options.history
    return min(wanted, PAGE) if wanted and options.event_filter.is_empty else PAGE


async def _history(
    client: redis.asyncio.Redis,
    reader: StreamReader,
    options: TailOptions,
    output: Output,
    since: datetime | None,
) -> None:
    """The last N matching events (all since `since`, --since on Redis's clock, when no N), oldest first.

    Reading back finds where they start: the Nth match from the end (see `_Window`); past
    MAX_HELD_BYTES the range is read again forwards and printed page by page. What the stream no
    longer holds comes first, from the history.
    """
    from sollol_otel.redis.stream import id_for_time, next_id

    since_id = id_for_time(since) if since else None
    if options.history == 0:
        await reader.start_live()
        return
    page = _page(options)
    output.watch_history()
    window = _Window(options.history, output)
    pages = reader.pages_back(page, since=since_id)
    async with contextlib.aclosing(pages):
        async for entries in pages:
            if window.add(entries):
                break
    wanted = options.history
    edge = window.start or next_id(reader.position.last_id)
    if (wanted is None or window.matched < wanted) and await _stream_starts_after(client, options, since):
        await _older(
            client, options, output, since, edge, None if wanted is None else wanted - window.matched
        )
    if window.start is not None and window.end is not None:
        if window.held is not None:
            window.emit()
        else:
            output.watch_history()  # counted again as printed
            async for entries in reader.pages_forward(page, start=window.start, end=window.end):
                output.entries(entries)
    output.explain(since, options.where)


async def _stream_starts_after(
    client: redis.asyncio.Redis, options: TailOptions, since: datetime | None
) -> bool:
    """Whether the stream begins after `since` (or at all): only then is the history asked, so
    `tail` of the hot window never loads the history engine."""
    from sollol_otel.redis.clock import id_ms

    first: Any = await client.xrange(options.stream, count=1)
    if not first or since is None:
        return True
    return id_ms(first[0][0]) > int(since.timestamp() * 1000)


async def _older(
    client: redis.asyncio.Redis,
    options: TailOptions,
    output: Output,
    since: datetime | None,
    edge: str,
    wanted: int | None,
) -> None:
    """Matching events before the id `edge` (the oldest the stream gave) from the history: the
    newest `wanted` of them, or all since `since`; oldest first."""
    from sollol_otel.history.query import History  # DuckDB only when the stream does not reach back
    from sollol_otel.redis.stream import stream_key

    history = await History.open(client, options.stream)
    if history is None:
        return
    if wanted is not None:
        older = await history.page(options.event_filter, TimeRange(since=since), before=edge, limit=wanted)
        output.entries(list(reversed(older)))
        return
    limit = stream_key(edge)
    until = EPOCH + timedelta(milliseconds=limit[0] + 1)
    batch: list[StreamEntry | Gap] = []
    async for entry in history.events(options.event_filter, TimeRange(since, until)):
        if stream_key(entry.id) >= limit:
            break
        batch.append(entry)
        if len(batch) >= PAGE:
            output.entries(batch)
            batch = []
    output.entries(batch)


async def _run(options: TailOptions, output: Output) -> int:
    import redis

    from sollol_otel.redis.client import CONNECTION_ERRORS
    from sollol_otel.redis.clock import redis_now_ms
    from sollol_otel.redis.stream import ReaderLost, StreamReader, reader_client

    where = options.where
    client: redis.asyncio.Redis | None = None
    try:
        try:
            client = await reader_client(options.redis_url, options.stream)
            reader = StreamReader(client, options.stream)
            if options.history is None and options.since is None:
                await reader.start_live()
            else:
                since = options.since.at(await redis_now_ms(client)) if options.since else None
                await _history(client, reader, options, output, since)
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


def _prepared(options: TailOptions) -> Output:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")  # a non-UTF-8 locale must not crash the viewer
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return Output(options, sys.stdout, sys.stderr)


_Code = TypeVar("_Code", int, int | None)


def _finish(options: TailOptions, output: Output, work: Callable[[], _Code]) -> _Code:
    """Runs `work` to its end or Ctrl+C/SIGTERM, then says the counts; None from `work` (nothing
    written) passes through unsaid."""
    try:
        code = work()
    except KeyboardInterrupt:
        code = EXIT_OK
    except BrokenPipeError:  # `| head` closed the pipe: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if code is None:
        return code
    zone = "" if options.live else f"; times in {time_zone()}"  # following said it when it began
    output.notice(f"{output.counts.summary()} from {options.where}{zone}")
    return code


def run(options: TailOptions) -> int:
    """Runs the command to its end (history mode), Ctrl+C/SIGTERM, or a lost Redis; the exit code."""
    output = _prepared(options)
    return _finish(options, output, lambda: _run_in_thread(options, output))


#: The options `quick_history` reads, and whether each may be repeated; any other command line is
#: Typer's. tests/cli/test_quick_history.py holds them to the Typer command's own.
QUICK_OPTIONS = {
    "--history": False,
    "--model": False,
    "--backend": False,
    "--event-type": True,
    "--instance": False,
    "--node": False,
    "--search": False,
    "--q": False,
    "--trace-id": False,
    "--output": False,
    "-o": False,
    "--color": False,
    "--redis-url": False,
    "--stream": False,
}
_SAME_AS = {"--q": "--search", "-o": "--output"}


def _quick_values(args: Sequence[str]) -> dict[str, list[str]] | None:
    """`tail` and options from QUICK_OPTIONS, each given once (unless repeatable), or None."""
    if not args or args[0] != "tail":
        return None
    values: dict[str, list[str]] = {}
    tokens = iter(args[1:])
    for token in tokens:
        name, equals, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if not equals:
            value = next(tokens, "-")
        name = _SAME_AS.get(name, name)
        if name not in QUICK_OPTIONS or value.startswith("-") or (name in values and not QUICK_OPTIONS[name]):
            return None
        values.setdefault(name, []).append(value)
    return values


def _quick_options(args: Sequence[str]) -> TailOptions | None:
    """The options of `tail --history N` with filters only, None for anything Typer must read or
    would refuse: `quick_history` recognises command lines, it never reports one wrong."""
    from sollol_otel.settings import Settings, SettingsError

    values = _quick_values(args)
    if values is None:
        return None
    one = {name: found[-1] for name, found in values.items()}
    history = one.get("--history", "")
    output = one.get("--output", OutputFormat.text.value)
    color = one.get("--color", ColorMode.auto.value)
    outputs, modes = {item.value for item in OutputFormat}, {item.value for item in ColorMode}
    if (
        not (history.isascii() and history.isdigit() and int(history) > 0)
        or output not in outputs
        or color not in modes
    ):
        return None
    try:
        settings = Settings.from_env().with_overrides(
            redis_url=one.get("--redis-url"), stream=one.get("--stream")
        )
    except SettingsError:
        return None
    if not settings.stream:
        return None
    return TailOptions(
        redis_url=settings.redis_url,
        stream=settings.stream,
        history=int(history),
        event_filter=EventFilter.build(
            one.get("--model"),
            one.get("--backend"),
            values.get("--event-type"),
            one.get("--instance"),
            node=one.get("--node"),
            q=one.get("--search"),
            trace_id=one.get("--trace-id"),
        ),
        output=OutputFormat(output),
        color=ColorMode(color),
    )


def quick_history(args: Sequence[str]) -> int | None:
    """`tail --history N` (filters allowed, no --follow or --since) of N events the stream holds,
    read with a small client of its own before Typer, redis-py and asyncio are even imported: their
    imports were most of the command's time (BENCHMARKS.md). None when the command line, the Redis
    URL, a reply or the stream's length leaves the answer to `run` (TLS, Sentinel, Cluster, an
    error, fewer than N matches): nothing is written then."""
    options = _quick_options(args)
    if options is None:
        return None
    output = _prepared(options)
    return _finish(options, output, lambda: _quick_window(options, output))


def _quick_window(options: TailOptions, output: Output) -> int | None:
    """Reads with the cyclic garbage collector off: decoded events make no cycles (reference
    counting frees them), and its passes over 10,000 new objects cost 5 ms of 170 (BENCHMARKS.md)."""
    gc.disable()
    try:
        window = _read_window(options, output)
    finally:
        gc.enable()
    if window is None:
        return None
    window.emit()
    output.explain(None, options.where)  # the quick path takes no --since
    return EXIT_OK


def _read_window(options: TailOptions, output: Output) -> _Window | None:
    """The history read back through `resp.Connection`; None (nothing written) when `run` must
    answer: the client cannot read this Redis, Redis answered an error, the text outgrew
    MAX_HELD_BYTES, or the stream holds fewer than N matching events and history may hold more
    (what lies beyond the stream is not the hot window's to answer)."""
    from sollol_otel.redis import resp

    try:
        connection = resp.Connection(options.redis_url)
    except (resp.Unsupported, resp.ReplyError, OSError):
        return None
    page = _page(options)
    output.watch_history()
    window = _Window(options.history, output)
    with connection:
        before = "+"
        while True:
            try:
                raw = connection.call("XREVRANGE", options.stream, before, "-", "COUNT", page)
            except (resp.ReplyError, OSError):
                return None
            entries = [StreamEntry(entry_id.decode(), _item(fields)) for entry_id, fields in reversed(raw)]
            if entries and window.add(entries):
                return window if window.held is not None else None
            if window.held is None:
                return None
            if len(entries) < page:
                indexed = window.end is None or _history_may_exist(connection, options.stream)
                return None if indexed else window
            before = "(" + entries[0].id


def _history_may_exist(connection: resp.Connection, stream: str) -> bool:
    """Whether `History.open` could find a history: an indexer holds the stream's lease (and may
    publish a folder of its own), or the configured folder has manifests. Asked once the stream ran
    out before N matches, so that the common case (no history) is answered without reading the
    stream a second time."""
    from sollol_otel.history.keys import lease_keys
    from sollol_otel.history.store import Store, default_root, stream_folder
    from sollol_otel.redis import resp

    try:
        if connection.call("EXISTS", lease_keys(stream)[2]):
            return True
    except (resp.ReplyError, OSError):
        return True
    return bool(Store(stream_folder(default_root(), stream)).manifest_names())


def _item(fields: list[bytes]) -> RoutingEvent | Skipped:
    """A raw entry's event: its payload decoded straight when `event` is its one field (as every
    writer sends it), otherwise as the stream reader decodes a field map."""
    if len(fields) == 2 and fields[0] == b"event":
        return decode(fields[1])
    return decode(dict(zip(fields[::2], fields[1::2], strict=True)))


def _run_in_thread(options: TailOptions, output: Output) -> int:
    """The event loop runs in a daemon thread, so Ctrl+C never has to cancel a Redis call.

    redis-py (8.1, Python 3.11) can swallow a task's cancellation inside a socket write
    guarded by its timeout, which leaves `asyncio.run` waiting forever after Ctrl+C.
    """
    import asyncio
    import threading

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
