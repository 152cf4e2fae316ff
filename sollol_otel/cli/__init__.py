"""The `sollol-otel` command line: tail, stats, emit-test, and the servers' launchers."""

from __future__ import annotations

import sys
from typing import Any, NoReturn


def main() -> NoReturn:
    """The `sollol-otel` entry point: `tail --history N` answers before Typer is imported (see
    `tail.quick_history`), everything else goes through the Typer app."""
    from sollol_otel.cli.tail import quick_history

    code = quick_history(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from sollol_otel.cli.main import main as typer_main

    typer_main()


def __getattr__(name: str) -> Any:
    """`app` loads Typer when asked for."""
    if name != "app":
        raise AttributeError(f"module 'sollol_otel.cli' has no attribute {name!r}")
    from sollol_otel.cli.main import app

    return app


__all__ = ["app", "main"]
