"""Running the receiver: the token and Host names it enforces, its banner, uvicorn."""

from __future__ import annotations

import logging

import typer
import uvicorn
import uvicorn.config

from sollol_otel.access import (
    GuardedHTTPProtocol,
    allowed_hosts,
    fitted_connections,
    is_loopback,
    login_url,
    token_for,
    without_tokens,
)
from sollol_otel.receiver.app import ReceiverConfig, create_app
from sollol_otel.redis.urls import redact_url
from sollol_otel.settings import COLLECTOR_ALLOWED_HOSTS, COLLECTOR_TOKEN, Settings

#: Connections served at once (senders, /healthz and /metrics scrapes); idle ones are closed first.
MAX_CONNECTIONS = 1024
#: File descriptors the process needs besides connections: Redis, the listener, stdio, threads' spares.
RESERVED_FILES = 32


def serve(settings: Settings, *, host: str, port: int, allow_no_token: bool = False) -> None:
    """Serve until interrupted.

    Bound beyond loopback it requires a bearer token: SOLLOL_COLLECTOR_TOKEN, else one made now
    and printed once, unless `allow_no_token` says something else guards the port.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    token, generated = token_for(host, COLLECTOR_TOKEN.read(), allow_no_token=allow_no_token)
    hosts = allowed_hosts(host, token, COLLECTOR_ALLOWED_HOSTS.read())
    if token is None and not is_loopback(host):
        typer.echo(
            f"sollol-otel collector: listening on {host} without a token (--allow-no-token): "
            "anyone who can reach this port can write routing events",
            err=True,
        )
    endpoint = login_url("http", host, port).rstrip("/")
    typer.echo(
        f"sollol-otel collector: OTLP/HTTP on {endpoint}/v1/logs and /v1/traces → "
        f"{redact_url(settings.redis_url)} stream {settings.stream!r}"
        + (" (bearer token required)" if token else ""),
        err=True,
    )
    if generated:
        typer.echo(
            f"sollol-otel collector: no {COLLECTOR_TOKEN.name} is set and it listens beyond loopback, so "
            f"senders must send this token, made for this run:\n    Authorization: Bearer {token}",
            err=True,
        )
    config = uvicorn.Config(
        create_app(settings, ReceiverConfig(token=token, allowed_hosts=hosts)),
        host=host,
        port=port,
        http=GuardedHTTPProtocol,
        limit_concurrency=fitted_connections(MAX_CONNECTIONS, RESERVED_FILES),
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_level="warning",
        log_config=without_tokens(uvicorn.config.LOGGING_CONFIG),
    )
    uvicorn.Server(config).run()
