"""A blocking RESP client for one plain Redis server, for `tail --history N` of the stream's newest
events: it reads the stream back without importing redis-py.

Why not redis-py here: importing it (8.1, with the OpenTelemetry metrics SDK it loads for its own
observability) costs about 0.18 s of CPU, more than reading and rendering 10,000 events
(BENCHMARKS.md, "Terminal viewer"). Replies are parsed by hiredis, which redis-py uses too.

It speaks to one server over TCP or a unix socket, with an ACL user and password and a database
number. Anything else is `Unsupported` (TLS, Sentinel, Cluster, URL options), and any error reply is
raised as `ReplyError` (a Cluster node's MOVED, NOAUTH, WRONGTYPE): the caller then reads through
redis-py, which handles and words all of those.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis

#: Seconds to connect and to wait for a reply, as redis-py's connect timeout in `client.py`: past
#: this the caller reads through redis-py, which waits and reports as every reader does, so a
#: stuck Redis costs `tail` at most this much more.
TIMEOUT = 2.0
_RECV = 1 << 18


class Unsupported(Exception):
    """A URL this client leaves to redis-py."""


class ReplyError(Exception):
    """An error reply from Redis."""


def _endpoint(url: str) -> tuple[str | tuple[str, int], str | None, str | None, int]:
    """(unix path or (host, port), user, password, db) of a plain `redis://` or `unix://` URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Unsupported("not a URL this client reads") from None
    scheme = parts.scheme.lower()
    query = parts.query.split("=", 1) if parts.query else []
    misplaced = "@" in parts.path + parts.query or (scheme == "unix" and parts.netloc[-1:] not in ("", "@"))
    if scheme not in ("redis", "unix") or parts.fragment or misplaced or (query and query[0] != "db"):
        raise Unsupported(f"{scheme} URLs, or URL options other than db, go through redis-py")
    db_text = query[1] if query else (parts.path.strip("/") if scheme == "redis" else "") or "0"
    if not db_text.isdigit() or not db_text.isascii():
        raise Unsupported("a db that is not a number goes through redis-py")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if scheme == "unix":
        return unquote(parts.path), user, password, int(db_text)
    return (parts.hostname or "localhost", port or 6379), user, password, int(db_text)


def _command(args: tuple[str | int, ...]) -> bytes:
    encoded = [str(arg).encode() for arg in args]
    return b"".join([b"*%d\r\n" % len(encoded), *(b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in encoded)])


class Connection:
    """One connection, one command at a time, replies as hiredis gives them (bytes, lists)."""

    def __init__(self, url: str) -> None:
        address, user, password, db = _endpoint(url)
        if isinstance(address, tuple):
            self._socket = socket.create_connection(address, TIMEOUT)
        else:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._socket.settimeout(TIMEOUT)
        self._reader = hiredis.Reader(replyError=ReplyError)
        try:
            if isinstance(address, str):
                self._socket.connect(address)
            if user is not None or password:
                self.call("AUTH", *([user] if user is not None else []), password or "")
            if db:
                self.call("SELECT", db)
        except BaseException:
            self.close()
            raise

    def call(self, *args: str | int) -> Any:
        """Sends one command and returns its reply; raises ReplyError for an error reply, OSError
        when the connection fails or times out."""
        self._socket.sendall(_command(args))
        reply = self._reader.gets()
        while reply is False:
            data = self._socket.recv(_RECV)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self._reader.feed(data)
            reply = self._reader.gets()
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
