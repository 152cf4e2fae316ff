"""What an operator asks the terminal: one line an event, another stream, counts by node, the time
zone, and where an empty answer came from. The real commands against real Redis."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest
import redis
from cli.tail_cli import environment, json_lines, run
from redis_servers import RedisServer
from sollol_events import sollol_event, write

#: Any escape sequence other than the colours and resets tail itself writes.
_FOREIGN_ESCAPE = re.compile(r"\x1b(?!\[[0-9;]*m)")

FALLBACK = sollol_event(
    event_type="FALLBACK_TRIGGERED", instance_id="ws_7_ab", model="codellama:13b", backend="rpc",
    from_backend="ollama", reason="ollama_error: Out of memory", node_url="10.0.0.22:11434",
    trace_id="a9679dbb8b42b2738d4184c58b993c4f", span_id="288399cd24e1ab7b",
)  # fmt: skip


@pytest.fixture
def other_stream(redis_client: redis.Redis) -> Iterator[str]:
    """A stream that is not the one the environment names."""
    key = f"test:{uuid.uuid4().hex[:12]}:other"
    yield key
    redis_client.delete(key)


def test_line_output_is_one_line_an_event_with_its_details_as_key_values(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], sollol_event(), FALLBACK)
    result = run("tail", "--history", "2", "-o", "line", "--color", "never")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("12:03:45.123 workstation_42_a1b2c3d4 ROUTE_DECISION ")  # TZ=UTC
    assert first.endswith(
        ' llama3.2:3b → ollama reason="sufficient_resources (estimated 2.5GB)" parameters=3B'
    )
    assert second.endswith(
        'codellama:13b → rpc reason="ollama_error: Out of memory" from=ollama node=10.0.0.22:11434 '
        "parameters=3B trace=a9679dbb8b42b2738d4184c58b993c4f"
    )


def test_line_output_escapes_every_control_character_from_an_event(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    hostile = sollol_event(
        instance_id="a\x1b]0;owned\x07", model="m\x1b[2J", reason="two\nlines\u202e", node_url="n\x9b31m"
    )
    write(redis_client, keys[0], hostile)
    result = run("tail", "--history", "1", "-o", "line", "--color", "always")
    assert result.stdout.count("\n") == 1
    assert not _FOREIGN_ESCAPE.search(result.stdout)
    assert not any(char in result.stdout for char in "\x07\x9b\u202e")
    assert "a\\x1b]0;owned\\x07" in result.stdout and "two\\x0alines\\u202e" in result.stdout


def test_tail_reads_the_stream_named_by_stream(
    keys: tuple[str, str], other_stream: str, redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], sollol_event(model="in-the-default"))
    write(redis_client, other_stream, sollol_event(model="in-the-other"))
    result = run("tail", "--history", "5", "--stream", other_stream, "-o", "json")
    assert [event["model"] for event in json_lines(result.stdout)] == ["in-the-other"]


def test_stats_reads_the_stream_named_by_stream(
    keys: tuple[str, str], other_stream: str, redis_client: redis.Redis
) -> None:
    write(redis_client, other_stream, sollol_event(), sollol_event())
    stats = json.loads(run("stats", "--stream", other_stream, "-o", "json").stdout)
    assert stats["events"] == 2
    assert stats["source"]["stream"] == other_stream


@pytest.fixture
def redis_with_password() -> Iterator[RedisServer]:
    server = RedisServer(args=["--requirepass", "pw-4711"]).start()
    try:
        yield server
    finally:
        server.close()


def test_an_empty_answer_names_the_stream_and_the_redis_without_its_password(
    keys: tuple[str, str], redis_with_password: RedisServer
) -> None:
    url = f"redis://:pw-4711@127.0.0.1:{redis_with_password.port}"
    env = environment(SOLLOL_REDIS_URL=url)
    tail = run("tail", "--history", "5", "--stream", "nothing:here", env=env)
    stats = run("stats", "--stream", "nothing:here", "--color", "never", env=env)
    stats_json = json.loads(run("stats", "--stream", "nothing:here", "-o", "json", env=env).stdout)
    where = f"nothing:here at redis://:***@127.0.0.1:{redis_with_password.port}"
    assert f"no event shown from {where}" in tail.stderr
    assert f"no event counted from {where}" in stats.stdout
    assert stats_json["source"] == {"stream": "nothing:here", "redis": where.split(" at ")[1]}
    assert "pw-4711" not in tail.stderr + tail.stdout + stats.stdout + json.dumps(stats_json)


def test_stats_counts_by_node_in_text_and_json(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(
        redis_client, keys[0],
        sollol_event(event_type="OLLAMA_NODE_SELECTED", node_url="10.0.0.21:11434"),
        sollol_event(event_type="OLLAMA_NODE_SELECTED", node_url="10.0.0.21:11434"),
        sollol_event(event_type="RPC_BACKEND_SELECTED", backend_host="10.0.0.31", backend_port=50052),
        sollol_event(),
    )  # fmt: skip
    stats = json.loads(run("stats", "-o", "json").stdout)
    assert stats["by_node"] == {"10.0.0.21:11434": 2, "10.0.0.31:50052": 1, "(none)": 1}
    text = run("stats", "--color", "never").stdout
    assert re.search(r"by node\n10\.0\.0\.21:11434 +2\n10\.0\.0\.31:50052 +1\n", text), text


def test_tail_and_stats_say_the_time_zone_once(keys: tuple[str, str], redis_client: redis.Redis) -> None:
    write(redis_client, keys[0], sollol_event(), sollol_event())
    env = environment(TZ="Europe/Berlin")
    tail = run("tail", "--history", "2", "--color", "never", env=env)
    stats = run("stats", "--color", "never", env=env)
    assert tail.stdout.count("[13:03:45.123]") == 2  # SOLLOL's layout, in Berlin's winter time
    assert (tail.stderr + tail.stdout).count("CET (UTC+01:00)") == 1
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"  # the window: when Redis added them (their stream ids)
    assert re.search(f"{when} → {when} CET \\(UTC\\+01:00\\)", stats.stdout)
    assert stats.stdout.count("UTC+01:00") == 1


def test_stats_refuses_line_output(keys: tuple[str, str]) -> None:
    result = run("stats", "-o", "line")
    assert result.returncode == 2 and "tables (text) or one object (json)" in result.stderr
