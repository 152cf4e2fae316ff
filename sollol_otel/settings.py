"""Every environment variable sollol-otel reads: name, default, parser and meaning, in one table.

SOLLOL 0.9.66's names and defaults are kept. Each variable is a `Variable` (the pattern of the
OTel SDK's `environment_variables` and Logfire's config params): code reads a value with
`VARIABLE.read()`, never with `os.environ` directly, so the README's table and this one agree and
a bad value always fails the same way, naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class SettingsError(ValueError):
    """An environment variable holds a value we cannot use."""


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def parse_int(name: str, raw: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer within [minimum, maximum]."""
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}{upper}")
    return value


def integer(*, minimum: int = 1, maximum: int | None = None) -> Callable[[str, str], int]:
    return lambda name, raw: parse_int(name, raw, minimum=minimum, maximum=maximum)


def port(name: str, raw: str) -> int:
    try:
        return parse_int(name, raw, maximum=65535)
    except SettingsError:
        raise SettingsError(f"{name}={raw!r} is not a port number") from None


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def duration_seconds(value: str) -> float | None:
    """`30s`, `15m`, `1h30m`, `7d` in seconds; None when `value` is not a duration."""
    value = value.strip()
    if not value or _DURATION.sub("", value):
        return None
    return sum(float(amount) * _UNITS[unit] for amount, unit in _DURATION.findall(value))


def duration(name: str, raw: str) -> float | None:
    seconds = duration_seconds(raw)
    if seconds is None or seconds < 1:
        raise SettingsError(f"{name}={raw!r} is not a duration of a second or more (like 30s, 15m, 24h, 7d)")
    return seconds


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?", re.IGNORECASE)


def size_bytes(name: str, raw: str) -> int:
    """`500MB`, `10GB`, `1.5TB` or a number of bytes (units of 1000)."""
    match = _SIZE.fullmatch(raw.strip())
    if match is None:
        raise SettingsError(f"{name}={raw!r} is not a size (like 500MB, 10GB)")
    unit = (match.group(2) or "b").lower()
    return int(float(match.group(1)) * 1000 ** ("b", "kb", "mb", "gb", "tb").index(unit))


def seconds(name: str, raw: str) -> float:
    """A finite, non-negative number of seconds."""
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise SettingsError(f"{name}={raw!r} must be a finite number of seconds, at least 0")
    return value


def text(name: str, raw: str) -> str:
    return raw


def optional_text(name: str, raw: str) -> str | None:
    return raw


def comma_list(name: str, raw: str) -> frozenset[str]:
    return frozenset(part.strip().rstrip("/") for part in raw.split(",") if part.strip())


def host_patterns(name: str, raw: str) -> frozenset[str]:
    """Host names, comma-separated; `*.example.com` matches its subdomains, `*` any name."""
    names = frozenset(part.strip().lower() for part in raw.split(",") if part.strip())
    for pattern in names:
        wildcard = pattern.startswith("*") and pattern != "*"
        if "*" in pattern[1:] or (wildcard and not pattern.startswith("*.")):
            raise SettingsError(f"{name}: {pattern!r} is not a host name or a pattern like *.example.com")
    return names


def trace_url_template(name: str, raw: str) -> str | None:
    """Only http(s) templates with a {trace_id} slot: the page turns them into links."""
    if "{trace_id}" not in raw:
        raise SettingsError(f"{name}={raw!r} has no {{trace_id}} placeholder")
    if urlsplit(raw.replace("{trace_id}", "x")).scheme not in ("http", "https"):
        raise SettingsError(f"{name}={raw!r} must be an http:// or https:// URL")
    return raw


@dataclass(frozen=True)
class Variable(Generic[T]):
    """One environment variable; blank or unset means the default."""

    name: str
    default: T
    parse: Callable[[str, str], T]
    meaning: str

    def read(self, environ: Mapping[str, str] | None = None) -> T:
        raw = (os.environ if environ is None else environ).get(self.name)
        if raw is None or raw.strip() == "":
            return self.default
        return self.parse(self.name, raw)


# Recording and where events go.
ROUTING_LOG = Variable("SOLLOL_ROUTING_LOG", True, parse_bool, "false turns recording off (near-zero cost)")
ROUTING_LOG_CONSOLE = Variable(
    "SOLLOL_ROUTING_LOG_CONSOLE", False, parse_bool, "also print each decision to stderr"
)
REDIS_URL = Variable(
    "SOLLOL_REDIS_URL",
    "redis://localhost:6379",
    text,
    "where events go and are read from: redis://, rediss://, unix://, redis+sentinel://, redis+cluster://",
)
ROUTING_STREAM = Variable("SOLLOL_ROUTING_STREAM", "sollol:routing_stream", text, "stream key")
ROUTING_CHANNEL = Variable("SOLLOL_ROUTING_CHANNEL", "sollol:routing_events", text, "pub/sub channel")
ROUTING_STREAM_MAXLEN = Variable(
    "SOLLOL_ROUTING_STREAM_MAXLEN", 10_000, integer(), "approximate stream length kept"
)
ROUTING_STREAM_RETENTION = Variable[float | None](
    "SOLLOL_ROUTING_STREAM_RETENTION",
    None,
    duration,
    "also trim stream entries older than this (30s, 15m, 24h, 7d), alongside the MAXLEN bound",
)
ROUTING_BACKLOG = Variable(
    "SOLLOL_ROUTING_BACKLOG",
    10_000,
    integer(),
    "events kept in memory while Redis is unreachable or refuses writes",
)
ROUTING_SHUTDOWN_TIMEOUT = Variable(
    "SOLLOL_ROUTING_SHUTDOWN_TIMEOUT",
    2.0,
    seconds,
    "seconds interpreter exit waits to deliver what is pending (Redis and OTLP alike)",
)
OTEL_SDK_DISABLED = Variable(
    "OTEL_SDK_DISABLED", False, parse_bool, "OpenTelemetry's switch: true also turns recording off"
)
METRICS_PORT = Variable[int | None](
    "SOLLOL_METRICS_PORT",
    None,
    port,
    "serve the decision metrics for Prometheus from the router process (forked workers: the next free ports)",
)
METRICS_HOST = Variable("SOLLOL_METRICS_HOST", "127.0.0.1", text, "where that endpoint listens")
# The dashboard.
DASHBOARD_TOKEN = Variable[str | None](
    "SOLLOL_DASHBOARD_TOKEN", None, optional_text, "token required by every dashboard endpoint"
)
DASHBOARD_ALLOWED_ORIGINS = Variable(
    "SOLLOL_DASHBOARD_ALLOWED_ORIGINS",
    frozenset[str](),
    comma_list,
    "extra WebSocket origins allowed, comma-separated",
)
DASHBOARD_ALLOWED_HOSTS = Variable(
    "SOLLOL_DASHBOARD_ALLOWED_HOSTS",
    frozenset[str](),
    host_patterns,
    "Host names served besides loopback ones (a reverse proxy's), comma-separated; `*.example.com` allowed",
)
DASHBOARD_MAX_CLIENTS = Variable(
    "SOLLOL_DASHBOARD_MAX_CLIENTS",
    1000,
    integer(),
    "live feeds (WebSocket and SSE) served at once; more get 503",
)
TRACE_URL_TEMPLATE = Variable[str | None](
    "SOLLOL_TRACE_URL_TEMPLATE", None, trace_url_template, "e.g. http://localhost:16686/trace/{trace_id}"
)
DASHBOARD_FLUSH_MS = Variable(
    "SOLLOL_DASHBOARD_FLUSH_MS",
    20,
    integer(minimum=0, maximum=1000),
    "how long the dashboard gathers events before fanning them out (latency vs. CPU)",
)
DASHBOARD_AUTOSTART = Variable(
    "SOLLOL_DASHBOARD_AUTOSTART", False, parse_bool, "the Instrumentor starts the dashboard if none answers"
)
DASHBOARD_HOST = Variable(
    "SOLLOL_DASHBOARD_HOST", "127.0.0.1", text, "where autostart looks for and starts the dashboard"
)
DASHBOARD_PORT = Variable("SOLLOL_DASHBOARD_PORT", 8080, port, "the port autostart looks at and listens on")
# The OTLP receiver.
COLLECTOR_TOKEN = Variable[str | None](
    "SOLLOL_COLLECTOR_TOKEN", None, optional_text, "bearer token required by `sollol-otel receiver`"
)
COLLECTOR_ALLOWED_HOSTS = Variable(
    "SOLLOL_COLLECTOR_ALLOWED_HOSTS",
    frozenset[str](),
    host_patterns,
    "Host names the receiver serves besides loopback ones (e.g. its Compose service name)",
)

# History (the indexer and the readers of its segments).
HISTORY_DIR = Variable[str | None](
    "SOLLOL_HISTORY_DIR",
    None,
    optional_text,
    "where history's Parquet segments live, one folder per stream "
    "(default: $XDG_DATA_HOME/sollol-otel/history; shared storage serves several hosts)",
)
HISTORY_RETENTION = Variable[float | None](
    "SOLLOL_HISTORY_RETENTION", 30 * 86400.0, duration, "history kept by age (`7d`, `30d`)"
)
HISTORY_MAX_SIZE = Variable(
    "SOLLOL_HISTORY_MAX_SIZE",
    10_000_000_000,
    size_bytes,
    "history kept by size on disk, oldest dropped first (`500MB`, `10GB`)",
)

#: Every variable, in the order the README's Configuration table lists them.
VARIABLES: tuple[Variable[Any], ...] = (
    ROUTING_LOG,
    ROUTING_LOG_CONSOLE,
    REDIS_URL,
    ROUTING_STREAM,
    ROUTING_CHANNEL,
    ROUTING_STREAM_MAXLEN,
    ROUTING_STREAM_RETENTION,
    ROUTING_BACKLOG,
    ROUTING_SHUTDOWN_TIMEOUT,
    OTEL_SDK_DISABLED,
    METRICS_PORT,
    METRICS_HOST,
    DASHBOARD_TOKEN,
    DASHBOARD_ALLOWED_ORIGINS,
    DASHBOARD_ALLOWED_HOSTS,
    DASHBOARD_MAX_CLIENTS,
    TRACE_URL_TEMPLATE,
    DASHBOARD_FLUSH_MS,
    DASHBOARD_AUTOSTART,
    DASHBOARD_HOST,
    DASHBOARD_PORT,
    COLLECTOR_TOKEN,
    COLLECTOR_ALLOWED_HOSTS,
    HISTORY_DIR,
    HISTORY_RETENTION,
    HISTORY_MAX_SIZE,
)


@dataclass(frozen=True)
class Settings:
    """Where routing events go and whether they are recorded at all."""

    enabled: bool = ROUTING_LOG.default
    console: bool = ROUTING_LOG_CONSOLE.default
    redis_url: str = REDIS_URL.default
    stream: str = ROUTING_STREAM.default
    channel: str = ROUTING_CHANNEL.default
    stream_maxlen: int = ROUTING_STREAM_MAXLEN.default
    stream_retention: float | None = ROUTING_STREAM_RETENTION.default  # seconds
    backlog: int = ROUTING_BACKLOG.default  # events kept in memory while Redis is away
    shutdown_timeout: float = ROUTING_SHUTDOWN_TIMEOUT.default  # what interpreter exit waits

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls(
            enabled=ROUTING_LOG.read(environ),
            console=ROUTING_LOG_CONSOLE.read(environ),
            redis_url=REDIS_URL.read(environ),
            stream=ROUTING_STREAM.read(environ),
            channel=ROUTING_CHANNEL.read(environ),
            stream_maxlen=ROUTING_STREAM_MAXLEN.read(environ),
            stream_retention=ROUTING_STREAM_RETENTION.read(environ),
            backlog=ROUTING_BACKLOG.read(environ),
            shutdown_timeout=ROUTING_SHUTDOWN_TIMEOUT.read(environ),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """Copy with the given fields replaced; None means "keep the current value"."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
