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

import asyncio
import collections
import contextlib
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
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

_log = logging.getLogger(__name__)

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


_TOKEN_IN_QUERY = re.compile(r"(?i)(\b(?:token|ticket)=)[^&\s\"']*")


def redact_tokens(text: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1***", text)


class TokenRedactor(logging.Filter):
    """Replaces `token=` (and the dashboard's feed `ticket=`) query values in a log record's arguments
    (uvicorn logs each request's path)."""

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


#: A connection that has not sent a complete request head within this long is closed.
REQUEST_HEAD_SECONDS = 10.0
#: How often idle and half-sent connections are looked for.
_GUARD_INTERVAL = 1.0
_AT_LIMIT = "to make room at the connection limit"
_TOO_SLOW = f"for over {REQUEST_HEAD_SECONDS:g} s"


class GuardedHTTPProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol (httptools, what "auto" picks), with a bound on connections in any
    state and a deadline for the request head.

    uvicorn alone closes an idle connection only after a response (`timeout_keep_alive`): a
    connection that never sends a request, or never finishes its headers, stays forever, and
    `limit_concurrency` only answers 503 to requests, so about a thousand such sockets exhaust
    the open-file limit and every request fails, /healthz included, with no token needed. Here
    a connection waiting for its (next) request head longer than REQUEST_HEAD_SECONDS is closed,
    and past `limit_concurrency - 1` connections the oldest one waiting is closed for each new
    one: on loopback an attacker and the users share one address, so age and state are all
    there is to choose by, and a connection being served is never the one closed.
    """

    waiting_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.waiting_since = self.loop.time()
        super().connection_made(transport)
        _guard(self.server_state, self.loop, self.limit_concurrency).admit(self)

    def on_response_complete(self) -> None:
        self.waiting_since = self.loop.time()
        super().on_response_complete()

    @property
    def waiting(self) -> bool:
        """No request being served: none sent yet, its head unfinished, or the last one answered."""
        return self.cycle is None or self.cycle.response_complete


class _ConnectionGuard:
    """One server's connections, as uvicorn keeps them (`ServerState.connections`)."""

    def __init__(self, state: ServerState, loop: asyncio.AbstractEventLoop, limit: int | None) -> None:
        self.state = state
        self.loop = loop
        self.limit = None if limit is None else max(1, limit - 1)  # uvicorn answers 503 at `limit`
        self.closed: collections.Counter[str] = collections.Counter()
        self._timer: asyncio.TimerHandle | None = None

    def admit(self, new: GuardedHTTPProtocol) -> None:
        if self.limit is not None and len(self.state.connections) > self.limit:
            waiting = [p for p in self._guarded() if p.waiting and p is not new]
            if waiting:
                self._close(min(waiting, key=lambda p: p.waiting_since), _AT_LIMIT)
        if self._timer is None:
            self._timer = self.loop.call_later(_GUARD_INTERVAL, self._reap)

    def _reap(self) -> None:
        self._timer = None
        deadline = self.loop.time() - REQUEST_HEAD_SECONDS
        for protocol in self._guarded():
            if protocol.waiting and protocol.waiting_since < deadline:
                self._close(protocol, _TOO_SLOW)
        if self.state.connections:
            self._timer = self.loop.call_later(_GUARD_INTERVAL, self._reap)

    def _guarded(self) -> list[GuardedHTTPProtocol]:
        return [p for p in self.state.connections if isinstance(p, GuardedHTTPProtocol)]

    def _close(self, protocol: GuardedHTTPProtocol, why: str) -> None:
        """Close at once, without flushing: its socket is what we need back. Making room at the limit
        is said once (someone holds many sockets); idle ones are common (browsers' preconnects)."""
        self.state.connections.discard(protocol)  # no longer counted, by us or by uvicorn's 503 check
        protocol.transport.abort()
        self.closed[why] += 1
        level = logging.WARNING if why == _AT_LIMIT and self.closed[why] == 1 else logging.DEBUG
        _log.log(level, "closed a connection waiting for a request %s (%d so far)", why, self.closed[why])


def _guard(state: ServerState, loop: asyncio.AbstractEventLoop, limit: int | None) -> _ConnectionGuard:
    guard: _ConnectionGuard | None = getattr(state, "sollol_guard", None)
    if guard is None:
        guard = _ConnectionGuard(state, loop, limit)
        state.sollol_guard = guard  # type: ignore[attr-defined]
    return guard


def fitted_connections(wanted: int, reserved: int, setting: str | None = None) -> int:
    """Connections to serve at once (`limit_concurrency`): `wanted`, lowered to fit the process's
    open-file limit (raised where allowed) with `reserved` files for everything else. Each
    connection is a file descriptor, and a process out of them fails every request and logs nothing."""
    try:
        import resource
    except ImportError:  # not a Unix
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + reserved
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    fitted = max(2, soft - reserved)
    _log.warning(
        "only %d open files allowed (ulimit -n): serving %d connections at once, not %d; raise the limit%s",
        soft,
        fitted,
        wanted,
        f" or lower {setting}" if setting else "",
    )
    return fitted
