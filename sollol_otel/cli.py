"""The `sollol-otel` command: one Typer app, each command's work in the module named for it."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="sollol-otel",
    help="See every routing decision of your LLM load balancers, live and after the fact.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@app.command()
def collector(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 inside a container)."),
    port: int = typer.Option(4319, help="Port; 4319 leaves 4318 to an OTel Collector on the same host."),
    redis_url: str = typer.Option(
        None, "--redis-url", help="Redis to write to [default: $SOLLOL_REDIS_URL]."
    ),
) -> None:
    """Receive routing events over OTLP/HTTP from any OTel SDK or Collector and write them into Redis.

    Set SOLLOL_COLLECTOR_TOKEN to require `Authorization: Bearer <token>` on every request.
    """
    from .receiver.server import serve

    serve(host=host, port=port, redis_url=redis_url)
