"""What reaches the operator's terminal: colour only when wanted, never the event's own control codes."""

from __future__ import annotations

import os
import pty
import subprocess

import redis
from cli.tail_cli import COMMAND, environment, json_lines, run
from sollol_events import sollol_event, write

HOSTILE = "[bold red]boom[/] :smile: \x1b]0;owned\x07 \x9b2J \u202eevil"


def on_a_terminal(*args: str, **env: str) -> str:
    """The command's stdout as a terminal receives it."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [*COMMAND, *args], stdout=follower, stderr=subprocess.DEVNULL, env=environment(**env)
    ) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(20)
    os.close(leader)
    return b"".join(chunks).decode()


def test_never_means_no_escape_codes(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(redis_client, keys[0], sollol_event())
    assert "\x1b" not in run("tail", "--history", "1", "--color", "never").stdout


def test_always_colours_even_into_a_pipe(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(redis_client, keys[0], sollol_event())
    assert "\x1b[1;96mROUTE_DECISION" in run("tail", "--history", "1", "--color", "always").stdout


def test_auto_does_not_colour_a_pipe(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(redis_client, keys[0], sollol_event())
    assert "\x1b" not in run("tail", "--history", "1").stdout


def test_auto_colours_a_terminal(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(redis_client, keys[0], sollol_event())
    assert "\x1b[1;96mROUTE_DECISION" in on_a_terminal("tail", "--history", "1")


def test_auto_honours_a_non_empty_no_color(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(redis_client, keys[0], sollol_event())
    output = on_a_terminal("tail", "--history", "1", NO_COLOR="1")
    assert "ROUTE_DECISION" in output and "\x1b" not in output


def test_an_empty_no_color_is_ignored(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(redis_client, keys[0], sollol_event())
    assert "\x1b[1;96mROUTE_DECISION" in on_a_terminal("tail", "--history", "1", NO_COLOR="")


def test_hostile_text_reaches_a_coloured_terminal_escaped_and_literal(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], sollol_event(model=HOSTILE, reason=HOSTILE, instance_id=HOSTILE))
    stdout = run("tail", "--history", "1", "--color", "always").stdout
    assert "[bold red]boom[/] :smile: \\x1b]0;owned\\x07 \\x9b2J \\u202eevil" in stdout
    assert not any(char in stdout for char in "\x07\x9b\u202e") and "\x1b]" not in stdout


def test_hostile_text_in_json_output_is_escaped_and_round_trips(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], sollol_event(model=HOSTILE))
    stdout = run("tail", "--history", "1", "-o", "json").stdout
    assert not any(char in stdout for char in "\x1b\x07\x9b\u202e")
    assert json_lines(stdout)[0]["model"] == HOSTILE
