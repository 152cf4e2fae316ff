"""What an operator can get wrong on the command line: one line saying what, exit 2, no traceback."""

from __future__ import annotations

import pytest
from cli.tail_cli import environment, run

BAD_SINCE = ["100000000h", "99999999999d", "1960-01-01T00:00:00Z", "yesterday", "1e400s"]


@pytest.mark.parametrize("command", ["tail", "stats"])
@pytest.mark.parametrize("since", BAD_SINCE)
def test_a_since_no_stream_can_hold_is_one_line_and_exit_2(
    keys: tuple[str, str], command: str, since: str
) -> None:
    result = run(command, "--since", since)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "--since" in result.stderr and since in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["tail", "--history", "-1"],
        ["tail", "--no-such-option"],
        ["tail", "--redis-url", "not-a-url"],
        ["stats", "--redis-url", "redis://localhost:notaport"],
        ["emit-test", "--redis-url", "ftp://localhost"],
        ["dashboard", "--port", "70000"],
    ],
)
def test_any_other_usage_error_is_one_line_and_exit_2(keys: tuple[str, str], args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr


def test_a_bad_environment_variable_is_one_line_naming_it(keys: tuple[str, str]) -> None:
    result = run("receiver", env=environment(SOLLOL_COLLECTOR_ALLOWED_HOSTS="a*b"))
    assert result.returncode == 2
    assert (
        result.stderr.splitlines() == [result.stderr.strip()]
        and "SOLLOL_COLLECTOR_ALLOWED_HOSTS" in result.stderr
    )
