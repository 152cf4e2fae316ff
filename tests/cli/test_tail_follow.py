"""`sollol-otel tail` live: from now, or after history with nothing lost or repeated, and through outages."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
import redis
from cli.tail_cli import Running, environment
from redis_servers import RedisServer
from sollol_events import sollol_event, write, write_ahead

Start = Callable[..., Running]


def test_live_mode_shows_only_events_written_after_it_started(
    keys: tuple[str, str], redis_client: redis.Redis, start: Start
) -> None:
    write(redis_client, keys[0], sollol_event(n=0))
    tail = start("tail", "-o", "json")
    tail.wait_for(lambda: tail.stderr_has("following"))
    write(redis_client, keys[0], sollol_event(n=1), sollol_event(n=2))
    tail.wait_for(lambda: len(tail.stdout) == 2)
    assert tail.interrupt() == 0
    assert [event["n"] for event in tail.json_events()] == [1, 2]
    assert tail.stderr_has("2 shown, 0 filtered out, 0 skipped as malformed, 0 missed")


def test_follow_after_history_loses_and_repeats_nothing_while_events_are_written(
    keys: tuple[str, str], redis_client: redis.Redis, start: Start
) -> None:
    write(redis_client, keys[0], *(sollol_event(n=n) for n in range(100)))
    total = 2000

    def writer() -> None:
        client = redis.Redis.from_url(os.environ["SOLLOL_REDIS_URL"])
        for n in range(100, total):
            write(client, keys[0], sollol_event(n=n))
        client.close()

    tail = start("tail", "--history", "20", "--follow", "-o", "json")
    thread = threading.Thread(target=writer)
    thread.start()  # races the history read on purpose
    thread.join()
    tail.wait_for(lambda: bool(tail.stdout) and f'"n": {total - 1},' in tail.stdout[-1])
    assert tail.interrupt() == 0
    shown = [event["n"] for event in tail.json_events()]
    assert shown[0] >= 80 and shown == list(range(shown[0], total))


@pytest.mark.redis7
def test_a_gap_from_trimming_while_the_viewer_was_paused_is_reported_with_its_count(
    keys: tuple[str, str], redis_client: redis.Redis, start: Start
) -> None:
    tail = start("tail", "-o", "json")
    tail.wait_for(lambda: tail.stderr_has("following"))
    write(redis_client, keys[0], sollol_event(n=0))
    tail.wait_for(lambda: len(tail.stdout) == 1)
    tail.process.send_signal(signal.SIGSTOP)  # Ctrl+Z, a laptop lid, a stuck pipe reader
    for n in range(1, 101):
        redis_client.xadd(keys[0], {"event": json.dumps(sollol_event(n=n))}, maxlen=20, approximate=False)
    time.sleep(0.5)
    tail.process.send_signal(signal.SIGCONT)
    tail.wait_for(lambda: tail.stderr_has("were missed") and '"n": 100,' in tail.stdout[-1])
    assert tail.interrupt() == 0
    summary = tail.stderr[-1]
    shown, missed = int(summary.split(" shown")[0]), int(summary.split(", ")[-1].split(" missed")[0])
    assert missed > 0 and shown + missed == 1 + 100


def test_reconnects_after_a_redis_restart_says_the_stream_was_reset_and_repeats_nothing(
    keys: tuple[str, str], private_redis: RedisServer, start: Start
) -> None:
    client = redis.Redis.from_url(private_redis.url)
    tail = start("tail", "-o", "json", env=environment(SOLLOL_REDIS_URL=private_redis.url))
    tail.wait_for(lambda: tail.stderr_has("following"))
    write(client, keys[0], sollol_event(n=1))
    tail.wait_for(lambda: len(tail.stdout) == 1)
    private_redis.stop()
    tail.wait_for(lambda: tail.stderr_has("lost Redis"))
    private_redis.start()
    tail.wait_for(lambda: tail.stderr_has("Redis is back"), timeout=30)
    write(client, keys[0], sollol_event(n=2))
    tail.wait_for(lambda: len(tail.stdout) == 2)
    write(
        client, keys[0], sollol_event(n=3)
    )  # would come after a repeated n=2 if the reset confused the reader
    tail.wait_for(lambda: len(tail.stdout) == 3)
    assert tail.interrupt() == 0
    assert [event["n"] for event in tail.json_events()] == [1, 2, 3]
    assert tail.stderr_has("the stream was replaced")
    client.close()


def test_a_deleted_stream_written_again_with_lower_ids_keeps_showing_every_new_event(
    keys: tuple[str, str], redis_client: redis.Redis, start: Start
) -> None:
    write_ahead(redis_client, keys[0], sollol_event(n=1))
    tail = start("tail", "--history", "1", "--follow", "-o", "json")
    tail.wait_for(lambda: len(tail.stdout) == 1 and tail.stderr_has("following"))
    redis_client.delete(keys[0])
    write(redis_client, keys[0], sollol_event(n=2), sollol_event(n=3))  # ids an hour below n=1's
    tail.wait_for(lambda: len(tail.stdout) == 3)
    write(redis_client, keys[0], sollol_event(n=4))
    tail.wait_for(lambda: len(tail.stdout) == 4)
    assert tail.interrupt() == 0
    assert [event["n"] for event in tail.json_events()] == [1, 2, 3, 4]
    assert tail.stderr_has("the stream was replaced") and tail.stderr_has("reading on in the new one")


def test_a_redis_restarted_empty_whose_new_ids_lie_below_ours_keeps_showing_every_new_event(
    keys: tuple[str, str], private_redis: RedisServer, start: Start
) -> None:
    client = redis.Redis.from_url(private_redis.url)
    write_ahead(client, keys[0], sollol_event(n=1))
    tail = start(
        "tail",
        "--history",
        "1",
        "--follow",
        "-o",
        "json",
        env=environment(SOLLOL_REDIS_URL=private_redis.url),
    )
    tail.wait_for(lambda: len(tail.stdout) == 1 and tail.stderr_has("following"))
    tail.process.send_signal(signal.SIGSTOP)  # the new entries are there before the reader is back
    private_redis.restart()  # empty: no persistence
    write(client, keys[0], sollol_event(n=2), sollol_event(n=3))
    tail.process.send_signal(signal.SIGCONT)
    tail.wait_for(lambda: len(tail.stdout) == 3, timeout=30)
    assert tail.interrupt() == 0
    assert [event["n"] for event in tail.json_events()] == [1, 2, 3]
    assert tail.stderr_has("the stream was replaced")
    client.close()


def test_exits_1_when_redis_stays_away_longer_than_the_reconnect_timeout(
    keys: tuple[str, str], private_redis: RedisServer, start: Start
) -> None:
    url = private_redis.url.replace("redis://", "redis://watcher:s3cret-pw@")
    redis.Redis.from_url(private_redis.url).acl_setuser(
        "watcher", enabled=True, passwords=["+s3cret-pw"], keys=["*"], commands=["+@all"]
    )
    tail = start("tail", "--reconnect-timeout", "1", env=environment(SOLLOL_REDIS_URL=url))
    tail.wait_for(lambda: tail.stderr_has("following"))
    private_redis.stop()
    assert tail.exit_code() == 1
    assert tail.stderr_has("gave up on") and tail.stderr_has("watcher:***@")
    assert not any("s3cret-pw" in line for line in tail.stderr + tail.stdout)


def test_an_unreachable_redis_at_start_exits_1_without_printing_the_password(
    keys: tuple[str, str], start: Start
) -> None:
    from redis_servers import free_port

    url = f"redis://:hunter2@127.0.0.1:{free_port()}"
    tail = start("tail", "--history", "5", env=environment(SOLLOL_REDIS_URL=url))
    assert tail.exit_code() == 1
    assert tail.stderr_has("cannot read") and tail.stderr_has(":***@127.0.0.1")
    assert not any("hunter2" in line for line in tail.stderr)
