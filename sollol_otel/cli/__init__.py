"""The `sollol-otel` command line: tail, stats, emit-test, and the servers' launchers."""

from sollol_otel.cli.main import app, main

__all__ = ["app", "main"]
