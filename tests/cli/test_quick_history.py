"""`tail --history N` answers through its own small Redis client before Typer, redis-py, asyncio or
Rich load, and prints exactly what the redis-py path prints; every other command line and URL goes
the redis-py way."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import redis
from cli.tail_cli import environment, run
from poison import write_poison
from redis_servers import RedisServer
from sollol_events import sollol_event, write
from typer.main import get_command

from sollol_otel.cli.main import app
from sollol_otel.cli.tail import QUICK_OPTIONS
from sollol_otel.display import ColorMode, console_for, styled_line
from sollol_otel.history.keys import lease_keys
from sollol_otel.history.store import Manifest, Store, stream_folder
from sollol_otel.redis import resp

#: What `tail` of the hot window never loads.
HEAVY = {"typer", "redis", "rich", "asyncio", "opentelemetry", "starlette", "uvicorn", "duckdb", "pydantic"}


def loaded(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages a real `sollol-otel` run imported (`python -X importtime`)."""
    result = run(*args, env={**(env or environment()), "PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w]+)", result.stderr, re.MULTILINE))


def test_quick_path_reads_only_options_the_typer_command_has() -> None:
    tail = get_command(app).commands["tail"]  # type: ignore[attr-defined]
    options = {name: param.multiple for param in tail.params for name in param.opts}
    assert {name: options.get(name) for name in QUICK_OPTIONS} == QUICK_OPTIONS


def test_history_to_a_pipe_loads_neither_typer_nor_redis_py_nor_rich(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], *(sollol_event(n=n) for n in range(5)))
    assert not loaded("tail", "--history", "5", "--model", "llama") & HEAVY


def test_since_still_goes_through_typer_and_redis_py(keys: tuple[str, str]) -> None:
    assert {"typer", "redis"} <= loaded("tail", "--history", "0", "--since", "1m")


def test_history_longer_than_the_stream_is_answered_by_the_quick_path_where_no_history_is_kept(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], *(sollol_event(n=n) for n in range(5)))
    assert "redis" not in loaded("tail", "--history", "6")
    result = run("tail", "--history", "6", "-o", "json")
    assert [line.count('"n":') for line in result.stdout.splitlines()] == [1] * 5


def test_history_longer_than_the_stream_is_left_to_the_full_path_while_an_indexer_holds_the_stream(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    write(redis_client, keys[0], *(sollol_event(n=n) for n in range(5)))
    redis_client.hset(lease_keys(keys[0])[2], mapping={"epoch": 1, "dir": "/nowhere", "host": "h", "pid": 1})
    assert "redis" in loaded("tail", "--history", "6")  # what lies before the stream is not its to answer


def test_history_longer_than_the_stream_is_left_to_the_full_path_where_history_has_manifests(
    keys: tuple[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    write(redis_client, keys[0], *(sollol_event(n=n) for n in range(5)))
    Store(stream_folder(tmp_path / "history", keys[0])).create()
    Store(stream_folder(tmp_path / "history", keys[0])).commit(Manifest())
    assert "redis" in loaded("tail", "--history", "6")


@pytest.mark.parametrize(
    "args",
    [
        ("--color", "always"),
        ("--color", "never", "--model", "LLAMA3.2"),
        ("-o", "line", "--color", "always"),
        ("--output=json", "--event-type", "route_decision,cache_hit"),
    ],
    ids=["text", "model", "line", "json"],
)
def test_quick_path_prints_what_the_redis_py_path_prints(
    keys: tuple[str, str], redis_client: redis.Redis, redis_url: str, args: tuple[str, ...]
) -> None:
    write(redis_client, keys[0], *(sollol_event(n=n, model=f"llama3.{n % 3}:3b") for n in range(700)))
    write_poison(redis_client, keys[0])
    write(redis_client, keys[0], sollol_event(event_type="CACHE_HIT", reason=None, backend=None))
    quick = run("tail", "--history", "600", *args)
    # redis-py's own URL options are the quick client's to refuse: this one goes the redis-py way
    slow = run("tail", "--history", "600", *args, "--redis-url", f"{redis_url}?socket_timeout=9")
    assert quick.returncode == slow.returncode == 0
    assert quick.stdout == slow.stdout
    assert quick.stderr == slow.stderr.replace("?socket_timeout=9", "")
    assert "skipped entry" in quick.stderr


def test_history_reads_over_a_unix_socket_and_as_an_acl_user(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    user = ["--user", "reader", "on", ">s3cret", "~*", "&*", "+@all", "--user", "default", "off"]
    server = RedisServer(args=["--unixsocket", str(socket_path), *user]).start()
    try:
        client = redis.Redis(port=server.port, username="reader", password="s3cret")
        write(client, "quick:stream", *(sollol_event(n=n) for n in range(3)))
        client.close()
        for url in (
            f"redis://reader:s3cret@127.0.0.1:{server.port}/0",
            f"unix://reader:s3cret@{socket_path}?db=0",
        ):
            env = environment(SOLLOL_REDIS_URL=url, SOLLOL_ROUTING_STREAM="quick:stream")
            assert not loaded("tail", "--history", "2", env=env) & HEAVY
            result = run("tail", "--history", "2", "-o", "json", env=env)
            assert [line.count('"n":') for line in result.stdout.splitlines()] == [1, 1]
            assert "s3cret" not in result.stdout + result.stderr
        refused = run(
            "tail",
            "--history",
            "2",
            env=environment(
                SOLLOL_REDIS_URL=f"redis://reader:wrong@127.0.0.1:{server.port}",
                SOLLOL_ROUTING_STREAM="quick:stream",
            ),
        )
        assert refused.returncode == 1  # redis-py's path says why, as before
        assert "cannot read" in refused.stderr and "wrong" not in refused.stderr
    finally:
        server.close()


@pytest.mark.parametrize(
    "url",
    [
        "rediss://127.0.0.1:6379",
        "redis+sentinel://127.0.0.1:26379/mymaster",
        "redis+cluster://127.0.0.1:7000",
        "redis://127.0.0.1:6379?ssl_cert_reqs=none",
        "redis://127.0.0.1:6379/not-a-db",
    ],
)
def test_the_small_client_leaves_tls_sentinel_cluster_and_options_to_redis_py(url: str) -> None:
    with pytest.raises(resp.Unsupported):
        resp.Connection(url)


@pytest.mark.parametrize("mode", [ColorMode.always, ColorMode.never])
@pytest.mark.parametrize(
    ("message", "style"),
    [("a\tb", "dim"), ("⚠ 3 events missed", "bold yellow"), ("", "green"), ("plain", "")],
)
def test_notices_print_as_rich_prints_them(message: str, style: str, mode: ColorMode) -> None:
    from rich.text import Text

    text = io.StringIO()
    console_for(text, mode).print(Text(message, style=style))
    assert styled_line(message, style, color=mode is ColorMode.always) == text.getvalue()


@pytest.mark.parametrize(("variable", "coloured"), [("FORCE_COLOR", True), ("TTY_COMPATIBLE", False)])
def test_colour_variables_rich_reads_still_decide_auto_colour_on_a_pipe(
    keys: tuple[str, str], redis_client: redis.Redis, variable: str, coloured: bool
) -> None:
    write(redis_client, keys[0], sollol_event())
    value = "1" if coloured else "0"
    result = run("tail", "--history", "1", env={**environment(), variable: value})
    assert ("\x1b[" in result.stdout) is coloured
    assert ("\x1b[" in result.stderr) is coloured
