"""Who may reach our servers: loopback checks, port probes, the Host allow-list, the bearer token.

The dashboard and the OTLP receiver share every rule here, so they cannot drift apart:

- A request is served only when its Host header names this server: loopback names by default
  (a web page on `rebind.evil.example` that resolves to 127.0.0.1 is refused: DNS rebinding),
  or the names configured for a reverse proxy. A server bound beyond loopback *with* a token
  takes any Host, since the token is what guards it there.
- A server bound beyond loopback never serves without a token: without a configured one it
  makes one and prints it once, as a login URL (as Jupyter does), unless told explicitly that
  something else restricts who can connect.
- Tokens are compared in constant time and never logged: uvicorn's access and WebSocket log
  lines have `token=` query values replaced (`without_tokens`).
"""

from __future__ import annotations

import copy
import hmac
import ipaddress
import logging
import re
import secrets
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

#: The names a browser uses for this machine and no DNS answer can rebind.
LOOPBACK_HOSTS = ("localhost", "*.localhost", "127.0.0.1", "::1", "[::1]")
#: How long a probe waits for a server to accept and answer.
PROBE_SECONDS = 0.5
#: What a Redis server says to PING, with or without a password set.
REDIS_REPLIES = (b"+PONG", b"-NOAUTH", b"-ERR AUTH")


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach a server bound to `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen there now (SO_REUSEADDR, as uvicorn and redis-server bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def answers(
    address: str | tuple[str, int],
    *,
    timeout: float = PROBE_SECONDS,
    send: bytes = b"",
    replies: Sequence[bytes] = (),
) -> bool:
    """Whether something accepts connections at `address` (host and port, or a unix socket path)
    and, given `send`, answers with one of `replies`."""
    try:
        if isinstance(address, str):
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(timeout)
            sock.connect(address)
        else:
            sock = socket.create_connection(address, timeout=timeout)
        with sock:
            if not send:
                return True
            sock.sendall(send)
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith(tuple(replies))


def redis_answers(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """Whether a Redis server answers PING at `url` (TCP or unix socket), without a client library."""
    parts = urlsplit(url)
    address = parts.path if parts.scheme == "unix" else (parts.hostname or "localhost", parts.port or 6379)
    return answers(address, timeout=timeout, send=b"PING\r\n", replies=REDIS_REPLIES)


def new_token() -> str:
    """A token for a server that must not serve without one: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_for(host: str, token: str | None, *, allow_no_token: bool = False) -> tuple[str | None, bool]:
    """The token a server bound to `host` requires, and whether it was generated just now.

    Beyond loopback a server never serves without one, unless told explicitly (`allow_no_token`)
    that something else restricts who can connect (a container's port published on loopback only).
    """
    if token is None and not allow_no_token and not is_loopback(host):
        return new_token(), True
    return token, False


def allowed_hosts(host: str, token: str | None, configured: Iterable[str] = ()) -> frozenset[str]:
    """The Host names a server bound to `host` serves: loopback names and the configured ones;
    any name when, bound beyond loopback, a token guards it and no names are configured."""
    names = frozenset(configured)
    if not names and token is not None and not is_loopback(host):
        return frozenset({"*"})
    return names | frozenset(LOOPBACK_HOSTS)


def host_check(configured: Iterable[str]) -> Middleware:
    """Refuses any HTTP request or WebSocket handshake whose Host is neither a loopback name nor
    one of `configured` (HTTP 400)."""
    hosts = sorted(frozenset(configured) | frozenset(LOOPBACK_HOSTS))
    return Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)


def bearer_token(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer` header, if one was sent."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time: how much of a guess was right does not show in the time it takes."""
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


_TOKEN_IN_QUERY = re.compile(r"(?i)(\btoken=)[^&\s\"']*")


def redact_tokens(text: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1***", text)


class TokenRedactor(logging.Filter):
    """Replaces `token=` query values in a log record's arguments (uvicorn logs each request's path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        return True


#: uvicorn's loggers that print request paths: HTTP access lines, and WebSocket handshakes.
_REQUEST_LOGGERS = ("uvicorn.access", "uvicorn.error")


def without_tokens(log_config: dict[str, Any]) -> dict[str, Any]:
    """A logging configuration (for uvicorn's `log_config`) whose request-logging loggers replace
    `token=` values; it travels into worker processes with the rest of the configuration."""
    config = copy.deepcopy(log_config)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.TokenRedactor"}
    for name in _REQUEST_LOGGERS:
        logger = config.setdefault("loggers", {}).setdefault(name, {})
        logger["filters"] = [*logger.get("filters", []), "redact_tokens"]
    return config


def login_url(scheme: str, host: str, port: int, token: str | None = None) -> str:
    """Where to open a server: a wildcard bind is shown as this machine's name."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"{scheme}://{shown}:{port}/" + (f"?token={token}" if token else "")
