"""The `sollol-otel` command line: tail, stats, emit-test, and the servers' launchers."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, NoReturn


def main() -> NoReturn:
    """The `sollol-otel` entry point: `tail --history N` answers before Typer is imported (see
    `tail.quick_history`), everything else goes through the Typer app."""
    from sollol_otel.cli.tail import quick_history

    code = quick_history(sys.argv[1:])
    if code is not None:
        _leave(code)
    from sollol_otel.cli.main import main as typer_main

    typer_main()


def _leave(code: int) -> NoReturn:
    """Exits once stdout and stderr are flushed, without the interpreter's teardown (freeing every
    module and object one by one: 8 ms of the quick path's 170, BENCHMARKS.md). Clean there: it
    holds no other buffer, thread, file or atexit handler, and its Redis connection is closed."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError):  # `| head` has what it wanted
            stream.flush()
    os._exit(code)


def __getattr__(name: str) -> Any:
    """`app` loads Typer when asked for."""
    if name != "app":
        raise AttributeError(f"module 'sollol_otel.cli' has no attribute {name!r}")
    from sollol_otel.cli.main import app

    return app


__all__ = ["app", "main"]
