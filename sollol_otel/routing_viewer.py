"""`python -m sollol_otel.routing_viewer`: SOLLOL's viewer command line, served by `sollol-otel tail`.

Existing scripts and habits (`python -m sollol.routing_viewer --history 100`) keep working
with the module name changed; every option of `tail` is accepted here too.
"""

from __future__ import annotations

import typer

from sollol_otel.cli.main import run, tail


def main() -> None:
    viewer = typer.Typer(add_completion=False, rich_markup_mode=None)
    viewer.command()(tail)
    run(viewer)


if __name__ == "__main__":
    main()
