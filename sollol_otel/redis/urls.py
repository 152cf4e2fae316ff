"""SOLLOL_REDIS_URL in every form sollol-otel accepts, parsed in one place, and shown safely.

- `redis://[[user]:password@]host[:port][/db][?options]`: one server, or any node of a Redis
  Cluster (detected when the client connects, see `client.py`).
- `rediss://…`: the same over TLS; redis-py's query options (`ssl_ca_certs`, `ssl_certfile`,
  `ssl_keyfile`, `ssl_cert_reqs`, …) configure it.
- `unix://[[user]:password@]/path/to/socket[?db=N]`.
- `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/<service>[/<db>][?options]`
  (`rediss+sentinel://` for TLS): the master of `<service>` as the sentinels name it, followed
  across failovers. The user and password are the master's; `sentinel_username=` and
  `sentinel_password=` authenticate to the sentinels. Sentinel's port defaults to 26379.
- `redis+cluster://[[user]:password@]host[:port][,host[:port]…][?options]` (`rediss+cluster://`):
  a Redis Cluster, the nodes given being where discovery starts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

SENTINEL_PORT = 26379
REDIS_PORT = 6379
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


class Topology(enum.Enum):
    """What the URL names: one server (perhaps a Cluster node), a Sentinel-managed master, a Cluster."""

    SERVER = "server"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


@dataclass(frozen=True)
class RedisAddress:
    """A parsed SOLLOL_REDIS_URL: what it names, where, and the connection options for redis-py."""

    url: str
    topology: Topology
    #: Sentinels, Cluster seed nodes, or the server's own address (empty for a unix socket).
    nodes: tuple[tuple[str, int], ...]
    #: Keyword arguments for redis-py's clients: credentials, db, `ssl=True` and its options.
    options: dict[str, Any] = field(repr=False)
    service: str | None = None
    #: Keyword arguments for the connections to the sentinels themselves.
    sentinel_options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def redacted(self) -> str:
        return redact_url(self.url)

    @property
    def tls(self) -> bool:
        return bool(self.options.get("ssl"))


#: Why a URL did not parse, never the URL itself: a pasted password may be most of it.
_UNPARSEABLE = (
    "the Redis URL cannot be parsed (not shown: it may hold a password); characters such as "
    "@ : / ? # in a user name or password must be percent-encoded (%40 %3A %2F %3F %23)"
)


def parse_redis_url(url: str) -> RedisAddress:
    """Parse any accepted form; ValueError (never showing the password) for anything else."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(_UNPARSEABLE) from None
    if _misplaced_credentials(parts):
        raise ValueError(_UNPARSEABLE)
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        return _server(url)
    base, _, kind = scheme.partition("+")
    if base not in ("redis", "rediss") or kind not in ("sentinel", "cluster"):
        raise ValueError(
            f"unsupported Redis URL scheme in {redact_url(url)}: use redis://, rediss://, unix://, "
            "redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"
        )
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    default_port = SENTINEL_PORT if kind == "sentinel" else REDIS_PORT
    nodes = tuple(_host_port(item, default_port, url) for item in hostlist.split(",") if item.strip())
    if not nodes:
        raise ValueError(f"no host in the Redis URL {redact_url(url)}")
    query = parse_qsl(parts.query, keep_blank_values=False)
    sentinel_auth = {name: value for name, value in query if name in _SENTINEL_OPTIONS}
    rest = urlencode([(name, value) for name, value in query if name not in _SENTINEL_OPTIONS])
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if kind == "sentinel":
        if not segments or len(segments) > 2:
            raise ValueError(f"the Sentinel URL {redact_url(url)} must name /<service>[/<db>]")
        service, db = segments[0], segments[1:]
    else:
        if segments not in ([], ["0"]):
            raise ValueError(f"a Redis Cluster has only database 0: {redact_url(url)}")
        service, db = None, []
    at = f"{userinfo}@" if userinfo else ""
    from redis.connection import parse_url  # imported when needed: `tail --history` reads without redis-py

    options = _options(
        parse_url(
            urlunsplit(  # type: ignore[no-untyped-call]
                (base, f"{at}localhost", "/".join(["", *db]), rest, "")
            )
        )
    )
    if kind == "cluster":
        return RedisAddress(url, Topology.CLUSTER, nodes, options)
    sentinel_options = {k: v for k, v in options.items() if k.startswith("ssl")}
    sentinel_options |= {k.removeprefix("sentinel_"): v for k, v in sentinel_auth.items()}
    return RedisAddress(url, Topology.SENTINEL, nodes, options, service, sentinel_options)


def _misplaced_credentials(parts: SplitResult) -> bool:
    """Whether part of a user name or password spilled past the host: an unencoded `/`, `?` or `#`
    in it ends the host part early, so what follows would be taken for a host, port, path or query."""
    if parts.scheme.lower() == "unix":  # its host part holds credentials or nothing
        if parts.netloc and not parts.netloc.endswith("@"):
            return True
    elif "@" in parts.path:
        return True
    if "@" in parts.fragment:
        return True
    return any("@" in pair.partition("=")[0] for pair in parts.query.split("&"))


def _server(url: str) -> RedisAddress:
    from redis.connection import parse_url

    try:
        raw = parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError:  # redis-py's text quotes the URL's parts: an unencoded password's among them
        raise ValueError(_UNPARSEABLE) from None
    nodes = () if "path" in raw else ((raw.get("host", "localhost"), raw.get("port", REDIS_PORT)),)
    return RedisAddress(url, Topology.SERVER, nodes, _options(raw))


def _options(raw: dict[str, Any]) -> dict[str, Any]:
    """redis-py's URL options as client keyword arguments: TLS as `ssl=True` (sync and asyncio alike)."""
    from redis.connection import SSLConnection, UnixDomainSocketConnection

    options = {k: v for k, v in raw.items() if k not in ("host", "port", "connection_class")}
    connection_class = raw.get("connection_class")
    if connection_class is SSLConnection:
        options["ssl"] = True
    elif connection_class is UnixDomainSocketConnection:
        options["unix_socket_path"] = options.pop("path")
    return options


def _host_port(item: str, default_port: int, url: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port`."""
    try:
        parts = urlsplit(f"//{item.strip()}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host:
        raise ValueError(f"bad host {item.strip()!r} in the Redis URL {redact_url(url)}")
    return host, port or default_port


def redact_url(url: str) -> str:
    """The URL with any credentials replaced, safe for logs, errors and pages, whatever its shape.

    Everything up to the last `@` counts as credentials, even where an unencoded `/`, `?` or `#`
    in a password would end the host part early by the URL rules: only the user name before the
    first `:` is kept. Query options named `…password` are hidden too.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "<a Redis URL that cannot be parsed>"
    userinfo, at, rest = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:***@{rest}" if colon and "/" not in user else f"***@{rest}"
    address, question, query = rest.partition("?")
    if question:
        query = "&".join(
            f"{name}=***" if name.lower().endswith("password") else f"{name}{eq}{value}"
            for name, eq, value in (pair.partition("=") for pair in query.split("&"))
        )
    return f"{scheme}://{address}{question}{query}"


def scrub(text: str, url: str) -> str:
    """Error text with the URL's passwords removed, in case a library ever echoes them."""
    try:
        address = parse_redis_url(url)
    except ValueError:
        return text
    for secret in (address.options.get("password"), address.sentinel_options.get("password")):
        if secret:
            text = text.replace(secret, "***")
    return text
