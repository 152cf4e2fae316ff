"""`python -m sollol_otel` runs the CLI."""

from sollol_otel.cli import main

main()
