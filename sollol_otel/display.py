"""How a routing event reads on a terminal: SOLLOL's "Example Output" block, its colours, and
the escaping that keeps event text from acting on the terminal.

Model names come from client requests, so any field may hold terminal escape sequences
(kubectl's CVE-2021-25743) or bidirectional overrides that reorder what an operator reads.
Everything taken from an event goes through `safe_text` and into styled spans, never into
markup strings: a model name like `[red]x[/red]` or one holding escapes prints as the literal
characters it is. The tail command and the console exporter both print this.
"""

from __future__ import annotations

import enum
import functools
import math
import os
import re
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from sollol_otel.events import EventType, RoutingEvent

if TYPE_CHECKING:  # Rich is imported where it is used: `tail` to a pipe runs without it
    from rich.console import Console

# C0 controls except tab, DEL, C1 controls, and the Unicode bidi embedding/override/isolate marks.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe_text(value: object) -> str:
    """`str(value)` with every control character shown as a visible escape."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # none of the unsafe characters is printable: nothing to escape
        return text
    return _UNSAFE.sub(_escape, text)


class ColorMode(str, enum.Enum):
    auto = "auto"
    always = "always"
    never = "never"


_FORCED: dict[ColorMode, dict[str, Any]] = {
    ColorMode.auto: {},
    ColorMode.always: {"force_terminal": True, "no_color": False, "color_system": "standard"},
    ColorMode.never: {"no_color": True, "color_system": None},
}


def console_for(file: TextIO, mode: ColorMode) -> Console:
    """A Rich console that colours per `mode`; auto means a terminal and no non-empty NO_COLOR.

    Markup, emoji codes and highlighting are off: text from events must print as written.
    """
    from rich.console import Console

    return Console(file=file, highlight=False, markup=False, emoji=False, soft_wrap=True, **_FORCED[mode])


def colours(console: Console) -> bool:
    return console.color_system is not None and not console.no_color


def colour_on(file: TextIO, mode: ColorMode) -> bool:
    """Whether `console_for(file, mode)` colours, without loading Rich when the answer is plain:
    always, never, or auto to a pipe or file with neither TTY_COMPATIBLE nor FORCE_COLOR set
    (the variables Rich reads to take a non-terminal for one)."""
    if mode is not ColorMode.auto:
        return mode is ColorMode.always
    forced = "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ
    isatty = getattr(file, "isatty", None)
    try:
        if not forced and (isatty is None or not isatty()):
            return False
    except ValueError:  # a closed file: no terminal (Rich says the same)
        return False
    return colours(console_for(file, mode))


def styled_line(message: str, style: str, *, color: bool) -> str:
    """A notice as Rich prints it (`Console.print(Text(message, style=style))`), one line; Rich
    itself only for a tab, which it expands into separately styled runs."""
    if "\t" in message:
        from io import StringIO

        from rich.text import Text

        text = StringIO()
        console_for(text, ColorMode.always if color else ColorMode.never).print(Text(message, style=style))
        return text.getvalue()
    return f"{_sgr(style)}{message}{_RESET}\n" if color and style and message else message + "\n"


#: Colours per event type, as SOLLOL's viewer draws them (its bright ANSI colours).
EVENT_STYLES: Mapping[str, str] = {
    EventType.ROUTE_DECISION: "bold bright_cyan",
    EventType.RPC_BACKEND_SELECTED: "bold bright_cyan",
    EventType.CACHE_HIT: "bold bright_blue",
    EventType.OLLAMA_NODE_SELECTED: "bold bright_blue",
    EventType.COORDINATOR_START: "bold bright_green",
    EventType.TASK_QUEUED: "bold bright_green",
    EventType.TASK_START: "bold bright_green",
    EventType.TASK_COMPLETE: "bold bright_green",
    EventType.FALLBACK_TRIGGERED: "bold bright_yellow",
    EventType.MODEL_SWITCH: "bold bright_magenta",
    EventType.COORDINATOR_STOP: "bold bright_red",
    EventType.WORKER_LOAD: "bold bright_black",
}
UNKNOWN_TYPE_STYLE = "bold"

_EVENT_TYPE_CELLS = 20  # the longest SOLLOL types (OLLAMA_NODE_SELECTED, RPC_BACKEND_SELECTED)
_MODEL_CELLS = 20
_DIM = "dim"


def _shown(value: object) -> str:
    return "N/A" if value is None else safe_text(value)


def _number(value: object, spec: str, suffix: str = "") -> str:
    """A number formatted, anything else shown as it is (writers are not always numeric)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return format(value, spec) + suffix
    return _shown(value)


def _billions(count: str) -> str:
    """SOLLOL writes the parameter count in billions as a number; some writers add the B."""
    return count if count[-1:] in ("b", "B") else count + "B"


def _host_port(fields: Mapping[str, Any], host: str, port: str) -> str | None:
    if fields.get(host) is None:
        return None
    return f"{_shown(fields[host])}:{_shown(fields.get(port))}"


def _from(fields: Mapping[str, Any]) -> str | None:
    source = fields.get("from_backend", fields.get("from_model"))
    return None if source is None else _shown(source)


def _rpc_backends(fields: Mapping[str, Any]) -> str | None:
    """SOLLOL sends a count; other writers send the list itself, shown with its count."""
    value = fields.get("rpc_backends")
    if value is None:
        return None
    if isinstance(value, list):
        return f"{len(value)} ({', '.join(_shown(item) for item in value)})"
    return _shown(value)


def _load(fields: Mapping[str, Any]) -> str | None:
    if "active_tasks" not in fields:
        return None
    cpu = _number(fields.get("cpu_percent"), ".1f", "%")
    memory = _number(fields.get("memory_mb"), ".0f", " MB")
    return f"{_shown(fields['active_tasks'])} active tasks, cpu {cpu}, memory {memory}"


def _outcome(fields: Mapping[str, Any]) -> str | None:
    if "success" not in fields:
        return None
    return "failed" if fields["success"] is False else "ok"


def _trace(fields: Mapping[str, Any]) -> str | None:
    if fields.get("trace_id") is None:
        return None
    span = fields.get("span_id")
    return _shown(fields["trace_id"]) + ("" if span is None else f" (span {_shown(span)})")


def _field(key: str, show: Callable[[object], str] = _shown) -> Callable[[Mapping[str, Any]], str | None]:
    return lambda fields: None if fields.get(key) is None else show(fields[key])


Detail = Callable[[Mapping[str, Any]], "str | None"]

#: The detail lines in SOLLOL's order (reason, duration, coordinator, rpc_backends, node,
#: confidence, parameters), with the keys of the other event types and the trace id added.
#: Each is looked at only when the event has one of the keys it shows (most have few of them).
_DETAILS: tuple[tuple[str, tuple[str, ...], Detail], ...] = (
    ("reason", ("reason",), _field("reason")),
    ("from", ("from_backend", "from_model"), _from),
    ("rpc_backend", ("backend_host",), lambda fields: _host_port(fields, "backend_host", "backend_port")),
    ("task", ("task_id",), _field("task_id")),
    ("worker", ("worker",), _field("worker")),
    ("load", ("active_tasks",), _load),
    ("duration", ("duration",), _field("duration", lambda value: _number(value, ".2f", "s"))),
    ("result", ("success",), _outcome),
    (
        "coordinator",
        ("coordinator_host",),
        lambda fields: _host_port(fields, "coordinator_host", "coordinator_port"),
    ),
    ("rpc_backends", ("rpc_backends",), _rpc_backends),
    ("node", ("node_url",), _field("node_url")),
    ("confidence", ("confidence",), _field("confidence", lambda value: _number(value, ".2f"))),
    ("priority", ("priority",), _field("priority")),
    ("parameters", ("parameter_count",), _field("parameter_count", lambda value: _billions(_shown(value)))),
    ("trace", ("trace_id",), _trace),
)


def details(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) of every detail the event has, in SOLLOL's order."""
    found = []
    for label, keys, show in _DETAILS:
        for key in keys:
            if key in fields:
                value = show(fields)
                if value is not None:
                    found.append((label, value))
                break
    return found


def _padded(text: str, cells: int) -> str:
    if text.isascii():
        return text.ljust(cells)
    from rich.cells import cell_len

    return text + " " * max(0, cells - cell_len(text))


@functools.lru_cache(maxsize=4096)
def _local_second(second: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(second))


def _clock(event: RoutingEvent) -> str:
    """Local wall-clock time to the millisecond, or the writer's own text when it is not a time.

    Events come many to a second: each second is turned into local time once.
    """
    moment = event.time
    if moment is not None:
        return f"{_local_second(math.floor(moment.timestamp()))}.{moment.microsecond // 1000:03d}"
    raw = event.fields.get("timestamp")
    return "--:--:--.---" if raw is None else safe_text(raw)


def time_zone() -> str:
    """The zone every shown time is in, said once by the commands that show times."""
    now = datetime.now().astimezone()
    offset = now.strftime("%z")
    name = now.tzname() or ""
    return name if name == "UTC" and offset == "+0000" else f"{name} (UTC{offset[:3]}:{offset[3:]})".lstrip()


def _instance(event: RoutingEvent) -> str:
    return safe_text(event.instance_id or event.text("hostname") or "unknown")


#: The block's first line; {type_style} stands for the event type's colour.
_HEAD = (
    ("[{clock}]", _DIM),
    (" ", ""),
    ("{kind}", "{type_style}"),
    (" │ ", _DIM),
    ("model=", ""),
    ("{model}", "cyan"),
    (" │ ", _DIM),
    ("backend=", ""),
    ("{backend}", "yellow"),
)
#: Each detail line under it; the last one closes the tree. The value comes last, unstyled.
_DETAIL = (("\n", ""), ("  {branch} {label}: ", _DIM), ("{value}", ""))
_BRANCHES = ("├─", "└─")


def _block(event: RoutingEvent) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """The type's style, the first line's values and the (label, value) of each detail line, all
    safe to print."""
    fields = event.fields
    head = {
        "clock": _clock(event),
        "kind": _padded(safe_text(event.event_type), _EVENT_TYPE_CELLS),
        "model": _padded(_shown(fields.get("model")), _MODEL_CELLS),
        "backend": _shown(fields.get("backend")),
    }
    return (
        EVENT_STYLES.get(event.event_type, UNKNOWN_TYPE_STYLE),
        head,
        [
            ("instance", _instance(event)),
            *details(fields),
        ],
    )


def event_pieces(event: RoutingEvent) -> list[tuple[str, str]]:
    """The block as (text, style) pieces; style "" is none. Newlines are pieces of their own."""
    type_style, head, tree = _block(event)
    pieces = [(text.format_map(head), style.replace("{type_style}", type_style)) for text, style in _HEAD]
    last = len(tree) - 1
    for index, (label, value) in enumerate(tree):
        line = {"branch": _BRANCHES[index == last], "label": label, "value": value}
        pieces.extend((text.format_map(line), style) for text, style in _DETAIL)
    return pieces


@functools.lru_cache(maxsize=256)
def _detail_start(label: str, last: bool, color: bool) -> str:
    """A detail line up to its value, escape sequences included: the same for every event."""
    return _template(_DETAIL, color).format_map({"branch": _BRANCHES[last], "label": label, "value": ""})


#: `-o line`: one line an event, as stern prints a busy fleet; each instance keeps one colour.
_LINE = (
    ("{clock}", _DIM),
    (" ", ""),
    ("{instance}", "{instance_style}"),
    (" ", ""),
    ("{kind}", "{type_style}"),
    (" ", ""),
    ("{model}", "cyan"),
    (" → ", _DIM),
    ("{backend}", "yellow"),
    ("{details}", ""),
)
_INSTANCE_STYLES = ("cyan", "green", "magenta", "yellow", "blue", "red")
#: Characters that make a logfmt value need quotes.
_LOGFMT_QUOTED = re.compile(r'[\s"=]')


def _logfmt(value: str) -> str:
    """Quoted when it must be; the value is already escaped for the terminal, so only `"` is added."""
    return '"' + value.replace('"', '\\"') + '"' if not value or _LOGFMT_QUOTED.search(value) else value


def render_line(event: RoutingEvent, *, color: bool) -> str:
    """The event on one line: time, instance, type, model → backend, then its details as
    logfmt `key=value` (the trace as its id alone). Text is as safe as the block's."""
    fields = event.fields
    instance = _instance(event)
    pairs = [f" {label}={_logfmt(value)}" for label, value in details(fields) if label != "trace"]
    if fields.get("trace_id") is not None:
        pairs.append(f" trace={_logfmt(_shown(fields['trace_id']))}")
    values = {
        "clock": _clock(event),
        "instance": instance,
        "kind": _padded(safe_text(event.event_type), _EVENT_TYPE_CELLS),
        "model": _shown(fields.get("model")),
        "backend": _shown(fields.get("backend")),
        "details": "".join(pairs),
    }
    type_style = EVENT_STYLES.get(event.event_type, UNKNOWN_TYPE_STYLE)
    instance_style = _INSTANCE_STYLES[zlib.crc32(instance.encode()) % len(_INSTANCE_STYLES)]
    return _template(_LINE, color, type_style, instance_style).format_map(values)


def render_ansi(event: RoutingEvent, *, color: bool) -> str:
    """The same block as terminal text: a fast path for printing thousands of events.

    Only our own fixed styles become escape sequences; the event's text is already safe and
    only ever fills a template's fields, never becomes one. Events of one shape (type and keys)
    share one format string of the whole block (see `_shape`); one whose detail value is null
    shows fewer lines and is put together line by line.
    """
    fields = event.fields
    template, shows = _shape(event.event_type, tuple(fields), color)
    values = [show(fields) for show in shows]
    if None in values:
        return _assembled(event, color)
    model = _padded(_shown(fields.get("model")), _MODEL_CELLS)
    return template.format(_clock(event), model, _shown(fields.get("backend")), _instance(event), *values)


def _assembled(event: RoutingEvent, color: bool) -> str:
    type_style, head, tree = _block(event)
    last = len(tree) - 1
    return _template(_HEAD, color, type_style).format_map(head) + "".join(
        [_detail_start(label, index == last, color) + value for index, (label, value) in enumerate(tree)]
    )


@functools.lru_cache(maxsize=1024)
def _shape(event_type: str, keys: tuple[str, ...], color: bool) -> tuple[str, tuple[Detail, ...]]:
    """The block of an event of this type with these keys as one format string, with positions
    for clock, model, backend, instance and each detail's value in turn, and the details' own
    functions. Typing the block once per shape halves the cost of an event (BENCHMARKS.md)."""
    present = set(keys)
    shown = [(label, show) for label, wanted, show in _DETAILS if not present.isdisjoint(wanted)]
    kind = _padded(safe_text(event_type), _EVENT_TYPE_CELLS).replace("{", "{{").replace("}", "}}")
    head = _template(_HEAD, color, EVENT_STYLES.get(event_type, UNKNOWN_TYPE_STYLE))
    labels = ["instance", *(label for label, _ in shown)]
    lines = [
        _detail_start(label, index == len(labels) - 1, color).replace("{", "{{").replace("}", "}}")
        + f"{{{index + 3}}}"
        for index, label in enumerate(labels)
    ]
    template = head.format_map({"clock": "{0}", "kind": kind, "model": "{1}", "backend": "{2}"})
    return template + "".join(lines), tuple(show for _, show in shown)


@functools.lru_cache(maxsize=256)
def _template(
    pieces: tuple[tuple[str, str], ...], color: bool, type_style: str = "", instance_style: str = ""
) -> str:
    """The pieces as one format string, each styled piece wrapped in its escape sequences."""
    parts = []
    for text, placeholder in pieces:
        style = placeholder.replace("{type_style}", type_style).replace("{instance_style}", instance_style)
        parts.append(f"{_sgr(style)}{text}{_RESET}" if color and style else text)
    return "".join(parts)


_RESET = "\x1b[0m"


@functools.lru_cache(maxsize=64)
def _sgr(style: str) -> str:
    """The escape sequence that starts one of our styles, in the 16 standard colours."""
    from rich.color import ColorSystem
    from rich.style import Style

    marked = Style.parse(style).render("\0", color_system=ColorSystem.STANDARD)
    return marked[: marked.index("\0")]
