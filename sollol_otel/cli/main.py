"""The `sollol-otel` command: one Typer app, each command's work in the module named for it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer

from sollol_otel.cli.exit_codes import EXIT_OK, EXIT_REDIS, EXIT_USAGE
from sollol_otel.cli.output import OutputFormat
from sollol_otel.display import ColorMode
from sollol_otel.filters import EventFilter, Since
from sollol_otel.settings import Settings, SettingsError

app = typer.Typer(
    name="sollol-otel",
    help="See every routing decision of your LLM load balancers, live and after the fact.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


# Options shared by the commands that read the stream (tail, stats).
RedisUrlOption = Annotated[
    str | None, typer.Option("--redis-url", help="Redis to read from [default: $SOLLOL_REDIS_URL].")
]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="Start from a time: 30s, 10m, 2h, 1d (back on Redis's clock), or ISO 8601."),
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Only models whose name starts so, any case (llama: llama3.2:3b)."),
]
BackendOption = Annotated[str | None, typer.Option("--backend", help="Only this backend (any name).")]
EventTypeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--event-type", help="Only these event types (any of); repeatable or comma-separated, any case."
    ),
]
InstanceOption = Annotated[str | None, typer.Option("--instance", help="Only instances whose id starts so.")]
NodeOption = Annotated[
    str | None,
    typer.Option("--node", help="Only events whose node (Ollama URL, RPC host:port) contains this."),
]
SearchOption = Annotated[
    str | None,
    typer.Option(
        "--search",
        "--q",
        help="Only events whose model, backend, node, reason, message or instance contains this.",
    ),
]
TraceIdOption = Annotated[
    str | None, typer.Option("--trace-id", help="Only the events of this request's trace.")
]
OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        "-o",
        help="text: SOLLOL's layout; line: one line an event (tail only); json: one object a line.",
    ),
]
StreamOption = Annotated[
    str | None,
    typer.Option("--stream", metavar="KEY", help="The stream to read [default: $SOLLOL_ROUTING_STREAM]."),
]
AllowNoTokenOption = Annotated[
    bool,
    typer.Option(
        "--allow-no-token",
        help="Serve without a token even beyond loopback, when something else restricts who can connect "
        "(a container port published on 127.0.0.1 only). Without it a token is made and printed.",
    ),
]
ColorOption = Annotated[
    ColorMode, typer.Option("--color", help="auto: colour on a terminal unless NO_COLOR is set.")
]


def _stream_settings(redis_url: str | None, stream: str | None = None) -> Settings:
    """The settings with --redis-url (and --stream) applied; a URL that cannot be parsed is a usage
    error here."""
    from sollol_otel.redis.urls import parse_redis_url

    if stream == "":
        raise typer.BadParameter("a stream key cannot be empty", param_hint="--stream")
    try:
        settings = Settings.from_env().with_overrides(redis_url=redis_url, stream=stream)
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        parse_redis_url(settings.redis_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--redis-url or SOLLOL_REDIS_URL") from None
    return settings


def _since(value: str | None) -> Since | None:
    if value is None:
        return None
    try:
        return Since.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


@app.command()
def tail(
    *,
    history: Annotated[
        int | None, typer.Option("--history", min=0, metavar="N", help="Show the last N matching events.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="With --history: then go on live, losing nothing between.")
    ] = False,
    since: SinceOption = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    event_type: EventTypeOption = None,
    instance: InstanceOption = None,
    node: NodeOption = None,
    search: SearchOption = None,
    trace_id: TraceIdOption = None,
    output: OutputOption = OutputFormat.text,
    color: ColorOption = ColorMode.auto,
    redis_url: RedisUrlOption = None,
    stream: StreamOption = None,
    reconnect_timeout: Annotated[
        float, typer.Option("--reconnect-timeout", min=0, help="Seconds to keep reconnecting before exit 1.")
    ] = 60.0,
) -> None:
    """Show routing events: live (the default), the last N (--history N), or both (--history N --follow).

    Events go to stdout, notices and the closing summary to stderr. Exit 1 when Redis cannot be
    read or stays away longer than --reconnect-timeout.
    """
    from sollol_otel.cli.tail import TailOptions, run

    settings = _stream_settings(redis_url, stream)
    options = TailOptions(
        redis_url=settings.redis_url,
        stream=settings.stream,
        history=history,
        follow=follow,
        since=_since(since),
        event_filter=EventFilter.build(
            model, backend, event_type, instance, node=node, q=search, trace_id=trace_id
        ),
        output=output,
        color=color,
        reconnect_timeout=reconnect_timeout,
    )
    raise typer.Exit(run(options))


@app.command()
def dashboard(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; keep 127.0.0.1 unless a token is set.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="Processes serving the one port, each with its own stream reader."
        ),
    ] = 1,
    redis_url: RedisUrlOption = None,
    allow_no_token: AllowNoTokenOption = False,
    no_indexer: Annotated[
        bool, typer.Option("--no-indexer", help="Do not run the history indexer in this dashboard.")
    ] = False,
) -> None:
    """Serve the live "🎯 SOLLOL Routing Decisions" dashboard (page, WebSocket/SSE feeds, JSON API).

    Set SOLLOL_DASHBOARD_TOKEN to require a token on every endpoint (open /?token=... once; beyond
    loopback one is made when none is set), SOLLOL_DASHBOARD_ALLOWED_HOSTS for a reverse proxy's
    name, SOLLOL_TRACE_URL_TEMPLATE (e.g. http://localhost:16686/trace/{trace_id}) to link traces.
    """
    import logging

    from sollol_otel.web import DashboardConfig, serve

    settings = _stream_settings(redis_url)
    try:
        config = DashboardConfig.from_env()
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    serve(
        settings,
        config,
        host=host,
        port=port,
        workers=workers,
        allow_no_token=allow_no_token,
        history_indexer=not no_indexer,
    )


@app.command()
def indexer(
    redis_url: RedisUrlOption = None,
    stream: Annotated[
        str | None, typer.Option("--stream", help="Stream to index [default: $SOLLOL_ROUTING_STREAM].")
    ] = None,
) -> None:
    """Copy the routing stream into history (Parquet segments in $SOLLOL_HISTORY_DIR), exactly once.

    One indexer per stream holds a lease in Redis; others stand by and take over within seconds
    when it stops. Dashboards run one unless started with --no-indexer.
    """
    import logging

    from sollol_otel.cli.indexer import run

    settings = _stream_settings(redis_url).with_overrides(stream=stream)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    raise typer.Exit(run(settings))


@app.command()
def receiver(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 inside a container.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port; not 4318, an OTel Collector's own.")
    ] = 4319,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Redis to write to [default: $SOLLOL_REDIS_URL].")
    ] = None,
    allow_no_token: AllowNoTokenOption = False,
) -> None:
    """Receive routing events over OTLP/HTTP (POST /v1/logs, /v1/traces) from any OTel SDK or Collector.

    They go into the Redis stream and channel like the in-process bridge's. Set
    SOLLOL_COLLECTOR_TOKEN to require `Authorization: Bearer <token>` on every export (beyond
    loopback one is made when none is set), SOLLOL_COLLECTOR_ALLOWED_HOSTS for the names senders use.
    """
    from sollol_otel.receiver.server import serve

    serve(_stream_settings(redis_url), host=host, port=port, allow_no_token=allow_no_token)


# The command's first name, kept for existing scripts and deployments; `collector/` is the real
# OpenTelemetry Collector's deployment, which this receiver sits beside.
app.command("collector", help="The same as `receiver` (its earlier name).")(receiver)


@app.command()
def stats(
    *,
    since: SinceOption = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    event_type: EventTypeOption = None,
    instance: InstanceOption = None,
    node: NodeOption = None,
    search: SearchOption = None,
    trace_id: TraceIdOption = None,
    output: OutputOption = OutputFormat.text,
    color: ColorOption = ColorMode.auto,
    top: Annotated[int, typer.Option("--top", min=1, help="Rows shown per table in text output.")] = 10,
    redis_url: RedisUrlOption = None,
    stream: StreamOption = None,
) -> None:
    """Counts by event type, backend, model, node and instance, the fallback rate and top fallback reasons.

    Over the window Redis keeps (SOLLOL_ROUTING_STREAM_MAXLEN events), or from --since on.
    """
    import sys

    from sollol_otel.cli.stats import run

    if output is OutputFormat.line:
        raise typer.BadParameter("stats prints tables (text) or one object (json)", param_hint="-o")
    settings = _stream_settings(redis_url, stream)
    raise typer.Exit(
        run(
            redis_url=settings.redis_url,
            stream=settings.stream,
            since=_since(since),
            event_filter=EventFilter.build(
                model, backend, event_type, instance, node=node, q=search, trace_id=trace_id
            ),
            output=output,
            color=color,
            top=top,
            out=sys.stdout,
            err=sys.stderr,
        )
    )


@app.command("emit-test")
def emit_test(
    *,
    console: Annotated[bool, typer.Option("--console", help="Also print each event to stderr.")] = False,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Redis to write to [default: $SOLLOL_REDIS_URL].")
    ] = None,
) -> None:
    """Record one routing event of every type through the real pipeline, and check they reached Redis."""
    import sys

    from sollol_otel.cli.emit_test import run

    raise typer.Exit(run(_stream_settings(redis_url), console=console, err=sys.stderr))


@app.command()
def demo(
    host: Annotated[str, typer.Option("--host", help="Address the dashboard listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Dashboard port.")] = 8080,
    rate: Annotated[
        float, typer.Option("--rate", min=0.1, help="Requests per second per simulated instance.")
    ] = 2.0,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            help="Write the simulated events into this Redis's configured stream. Without it, a Redis "
            "the demo did not start only gets the demo's own keys (sollol:demo:*).",
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="Keep the stream on exit. Without it, a stream the demo created in a Redis it did not "
            "start is removed.",
        ),
    ] = False,
) -> None:
    """Zero setup: Redis (embedded if none answers), the dashboard and a simulated SOLLOL cluster."""
    import sys

    from sollol_otel.access import port_free
    from sollol_otel.demo.runner import run

    if redis_url is not None:
        _stream_settings(redis_url)  # a URL that cannot be parsed is a usage error
    if not port_free(port, host):
        raise typer.BadParameter(f"port {port} on {host} is in use; choose another", param_hint="--port")
    raise typer.Exit(EXIT_OK if run(host, port, rate, sys.stdout, redis_url, keep=keep) else EXIT_REDIS)


#: click's exception classes: Typer's own copy of click (Typer 0.26 and later) or click itself.
_click: Any = importlib.import_module(typer.BadParameter.__module__)


def run(command: typer.Typer, args: Sequence[str] | None = None) -> NoReturn:
    """Runs a command line to its exit code; what the user got wrong is one line on stderr and exit 2,
    never a traceback or a usage screen (`--help` has that)."""
    try:
        code = command(args=args, standalone_mode=False)
    except _click.NoArgsIsHelpError as exc:
        exc.show()
        code = exc.exit_code
    except _click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "sollol-otel"
        message = " ".join(exc.format_message().split())
        typer.echo(f"{where}: {message} (see {where} --help)", err=True)
        code = EXIT_USAGE
    except SettingsError as exc:
        typer.echo(f"sollol-otel: {exc}", err=True)
        code = EXIT_USAGE
    except _click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def main() -> NoReturn:
    """The `sollol-otel` entry point."""
    run(app)
