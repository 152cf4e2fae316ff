"""Running the receiver: the token from the environment, a warning for open binds, uvicorn."""

from __future__ import annotations

import logging

import typer
import uvicorn

from sollol_otel.addresses import is_loopback
from sollol_otel.receiver.app import ReceiverConfig, create_app
from sollol_otel.redis.urls import redact_url
from sollol_otel.settings import COLLECTOR_TOKEN, Settings


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    token = COLLECTOR_TOKEN.read()
    if token is None and not is_loopback(host):
        typer.echo(
            f"sollol-otel collector: listening on {host} without {COLLECTOR_TOKEN.name}: "
            "anyone who can reach this port can write routing events",
            err=True,
        )
    typer.echo(
        f"sollol-otel collector: OTLP/HTTP on http://{host}:{port}/v1/logs and /v1/traces → "
        f"{redact_url(settings.redis_url)} stream {settings.stream!r}"
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
