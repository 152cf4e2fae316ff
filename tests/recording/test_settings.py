"""The environment variables: one table in code, the same table in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sollol_otel import settings
from sollol_otel.settings import SettingsError, Variable

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_variables() -> set[str]:
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`((?:SOLLOL|OTEL)_[A-Z_]+)`", table))


def test_every_variable_is_in_the_readme_configuration_table() -> None:
    assert {variable.name for variable in settings.VARIABLES} <= _readme_variables()


def test_every_sollol_variable_in_the_readme_is_one_the_code_reads() -> None:
    documented = {name for name in _readme_variables() if name.startswith("SOLLOL_")}
    assert documented <= {variable.name for variable in settings.VARIABLES}


def test_a_blank_value_means_the_default() -> None:
    assert settings.ROUTING_STREAM_MAXLEN.read({"SOLLOL_ROUTING_STREAM_MAXLEN": "  "}) == 10_000


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        (settings.ROUTING_LOG, "maybe", "SOLLOL_ROUTING_LOG='maybe' is not a boolean"),
        (settings.ROUTING_STREAM_MAXLEN, "0", "SOLLOL_ROUTING_STREAM_MAXLEN='0' must be at least 1"),
        (settings.DASHBOARD_PORT, "70000", "SOLLOL_DASHBOARD_PORT='70000' is not a port number"),
        (settings.TRACE_URL_TEMPLATE, "http://x/", "has no {trace_id} placeholder"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(variable: Variable[object], raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        variable.read({variable.name: raw})
