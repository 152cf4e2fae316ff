"""Running the receiver: the token from the environment, a warning for open binds, uvicorn."""

from __future__ import annotations

import logging
import os

import typer
import uvicorn

from sollol_otel.addresses import is_loopback
from sollol_otel.receiver.app import ReceiverConfig, create_app
from sollol_otel.settings import Settings

TOKEN_ENV = "SOLLOL_COLLECTOR_TOKEN"


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        typer.echo(
            f"sollol-otel collector: listening on {host} without {TOKEN_ENV}: anyone who can reach "
            "this port can write routing events",
            err=True,
        )
    typer.echo(
        f"sollol-otel collector: OTLP/HTTP on http://{host}:{port}/v1/logs and /v1/traces → "
        f"{settings.redacted_redis_url} stream {settings.stream!r}"
        + (" (bearer token required)" if token else ""),
        err=True,
    )
    uvicorn.run(
        create_app(settings, ReceiverConfig(token=token)),
        host=host,
        port=port,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_level="warning",
    )
