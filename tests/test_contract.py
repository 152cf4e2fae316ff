"""The external contract of ../shared/DESIGN.md: names users and scripts depend on stay as they are."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from starlette.routing import BaseRoute
from typer.testing import CliRunner

from sollol_otel.cli import app
from sollol_otel.settings import Settings
from sollol_otel.web import DashboardConfig, create_app

TAIL_OPTIONS = [
    "--history", "--follow", "--since", "--model", "--backend", "--event-type", "--instance",
    "--output", "--color", "--redis-url",
]  # fmt: skip
COMMANDS = {
    "tail": TAIL_OPTIONS,
    "dashboard": ["--host", "--port", "--workers", "--redis-url"],
    "collector": ["--host", "--port", "--redis-url"],
    "demo": ["--host", "--port"],
    "emit-test": [],
    "stats": ["--since"],
}


def test_the_public_api_imports_from_the_package() -> None:
    from sollol_otel import (  # noqa: F401
        bridge_stats,
        configure,
        enable_console_routing_log,
        force_flush,
        get_routing_logger,
        shutdown,
    )


@pytest.mark.parametrize(("command", "options"), COMMANDS.items())
def test_a_command_takes_its_documented_options(command: str, options: list[str]) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    assert [option for option in options if option not in result.output] == []


def test_the_routing_viewer_module_takes_tails_options() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "sollol_otel.routing_viewer", "--help"],
        capture_output=True, text=True, timeout=60, check=False, env={"COLUMNS": "200", "PATH": "/usr/bin"},
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert [option for option in TAIL_OPTIONS if option not in ran.stdout] == []


def test_the_instrumentor_is_registered_for_opentelemetry_instrument() -> None:
    (entry,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "sollol"]
    assert entry.load().__name__ == "SollolInstrumentor"


def paths(routes: list[BaseRoute]) -> set[str]:
    return {getattr(route, "path", "") for route in routes}


def test_the_dashboard_serves_its_documented_endpoints() -> None:
    documented = {
        "/",
        "/ws/routing_events",
        "/sse/routing_events",
        "/api/routing_events",
        "/api/stats",
        "/healthz",
    }
    assert documented <= paths(create_app(Settings(), DashboardConfig()).routes)
