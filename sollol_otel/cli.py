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
