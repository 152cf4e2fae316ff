"""Settings read from the environment, with SOLLOL 0.9.66's variable names and defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

DEFAULT_REDIS_URL = "redis://localhost:6379"
DEFAULT_STREAM = "sollol:routing_stream"
DEFAULT_CHANNEL = "sollol:routing_events"
DEFAULT_STREAM_MAXLEN = 10_000
DEFAULT_BACKLOG = 10_000

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class SettingsError(ValueError):
    """An environment variable holds a value we cannot use."""


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def parse_int(
    name: str, raw: str | None, default: int, *, minimum: int = 1, maximum: int | None = None
) -> int:
    """An integer environment variable within [minimum, maximum]; blank means the default."""
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}{upper}")
    return value


@dataclass(frozen=True)
class Settings:
    """Where routing events go and whether they are recorded at all."""

    enabled: bool = True
    console: bool = False
    redis_url: str = DEFAULT_REDIS_URL
    stream: str = DEFAULT_STREAM
    channel: str = DEFAULT_CHANNEL
    stream_maxlen: int = DEFAULT_STREAM_MAXLEN
    backlog: int = DEFAULT_BACKLOG  # events kept in memory while Redis is away

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            enabled=parse_bool("SOLLOL_ROUTING_LOG", env.get("SOLLOL_ROUTING_LOG"), True),
            console=parse_bool("SOLLOL_ROUTING_LOG_CONSOLE", env.get("SOLLOL_ROUTING_LOG_CONSOLE"), False),
            redis_url=env.get("SOLLOL_REDIS_URL") or DEFAULT_REDIS_URL,
            stream=env.get("SOLLOL_ROUTING_STREAM") or DEFAULT_STREAM,
            channel=env.get("SOLLOL_ROUTING_CHANNEL") or DEFAULT_CHANNEL,
            stream_maxlen=parse_int(
                "SOLLOL_ROUTING_STREAM_MAXLEN", env.get("SOLLOL_ROUTING_STREAM_MAXLEN"), DEFAULT_STREAM_MAXLEN
            ),
            backlog=parse_int("SOLLOL_ROUTING_BACKLOG", env.get("SOLLOL_ROUTING_BACKLOG"), DEFAULT_BACKLOG),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """Copy with the given fields replaced; None means "keep the current value"."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @property
    def redacted_redis_url(self) -> str:
        return redact_url(self.redis_url)


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe for logs, errors and pages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable redis url>"
    if parts.password is None and "password=" not in parts.query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostinfo}" if user else f":***@{hostinfo}"
    query = "&".join(
        "password=***" if pair.startswith("password=") else pair for pair in parts.query.split("&") if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
