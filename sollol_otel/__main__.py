"""`python -m sollol_otel` runs the CLI."""

from .cli import app

app()
