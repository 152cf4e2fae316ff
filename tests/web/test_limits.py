"""Clients that take too much: one too many is refused with 503, one that stops reading is cut off.

The slow clients here are real sockets with a small receive buffer that never read: the server's
sends stall as they would for a suspended laptop or a hostile script.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
from collections.abc import Iterator

import httpx
import pytest
import redis
from server_process import held_sockets, server_process
from waiting import eventually
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer, write, ws_feed
from websockets.exceptions import InvalidStatus

from sollol_otel.access import REQUEST_HEAD_SECONDS
from sollol_otel.web.app import RESERVED_FILES

#: Each event this large (the field limit) fills buffers fast: a few MB stall any socket.
BIG = "x" * 4000
SEND_TIMEOUT = 1.0
TOKEN = "t0ken-of-the-users"

REQUESTS = {
    "websocket": (
        "GET /ws/routing_events?batch=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    ),
    "sse": "GET /sse/routing_events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
}


@contextlib.contextmanager
def client_that_never_reads(server: DashboardServer, feed: str) -> Iterator[socket.socket]:
    """A feed opened from a socket with a tiny receive buffer that is never read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(REQUESTS[feed].format(key=key).encode())
    try:
        yield sock
    finally:
        sock.close()


def clients(server: DashboardServer) -> int:
    return int(httpx.get(f"{server.url}/healthz", timeout=10).json()["clients"])


def closed_by_the_server(sock: socket.socket) -> bool:
    """Read what is buffered; True once the connection is gone (EOF or reset)."""
    sock.setblocking(False)
    try:
        while sock.recv(1 << 20):
            pass
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return True


def write_until_cut_off(server: DashboardServer, client: redis.Redis, stream: str, start: int) -> None:
    """Big events until the subscribed client that never reads has been cut off."""
    eventually(lambda: clients(server) == 1, what="the feed to subscribe")
    for first in range(start, start + 4000, 500):
        write(client, stream, 500, first, reason=BIG)
        if clients(server) == 0:
            return
    eventually(lambda: clients(server) == 0, timeout=30, what="the stalled client to be cut off")


@pytest.fixture
def patient(start_dashboard: ServerFactory) -> DashboardServer:
    """A dashboard whose per-client queue never overflows, so only the send timeout can cut a client off."""
    return start_dashboard(send_timeout=SEND_TIMEOUT, client_queue=1_000_000)


@pytest.mark.parametrize("feed", ["websocket", "sse"])
def test_a_client_that_stops_reading_is_disconnected_and_its_socket_closed(
    patient: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str], feed: str
) -> None:
    with client_that_never_reads(patient, feed) as sock:
        write_until_cut_off(patient, redis_client, keys[0], 0)
        assert eventually(lambda: closed_by_the_server(sock), what="the TCP connection to close")


async def test_a_client_cut_off_resumes_from_its_last_id_and_is_told_what_was_trimmed(
    patient: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    [last_seen] = write(redis_client, keys[0], 1)
    with client_that_never_reads(patient, "websocket"):
        write_until_cut_off(patient, redis_client, keys[0], 1)
    redis_client.xtrim(keys[0], maxlen=10, approximate=False)
    async with ws_feed(patient, f"batch=1&last_id={last_seen}&offset=1", max_size=None) as resumed:
        messages = await resumed.caught_up()
    (gap,) = [m for m in messages if m["type"] == "gap"]
    added = redis_client.xinfo_stream(keys[0]).get("entries-added")  # Redis 6.2 cannot say how many
    assert gap["reason"] == "trimmed" and gap["missed"] == (None if added is None else int(added) - 11)


async def test_feeds_past_the_limit_are_refused_with_503_while_the_rest_of_the_server_answers(
    start_dashboard: ServerFactory,
) -> None:
    server = start_dashboard(max_clients=2)
    async with ws_feed(server) as first, ws_feed(server) as second:
        await first.caught_up()
        await second.caught_up()
        with pytest.raises(InvalidStatus) as refused:
            async with ws_feed(server):
                pass
        sse = httpx.get(f"{server.url}/sse/routing_events", timeout=10)
        assert (refused.value.response.status_code, sse.status_code) == (503, 503)
        assert sse.headers["retry-after"] and "try again later" in sse.json()["error"]
        assert httpx.get(f"{server.url}/api/config").status_code == 200
    async with ws_feed(server) as third:
        await third.caught_up()


def test_under_a_low_open_file_limit_it_says_so_and_idle_sockets_past_what_fits_do_not_block_it(
    keys: tuple[str, str],
) -> None:
    with server_process("dashboard", open_files=128) as server:
        assert "open files allowed" in server.stderr
        fits = 128 - RESERVED_FILES
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(fits)]
        try:
            health = eventually(lambda: httpx.get(f"{server.url}/healthz", timeout=10), what="an answer")
            assert health.status_code == 200
            assert sum(closed_by_the_server(sock) for sock in idle) >= 1  # the oldest idle made room
        finally:
            for sock in idle:
                sock.close()


def test_an_attacker_holding_1100_sockets_under_a_1024_file_limit_locks_out_no_user(
    keys: tuple[str, str],
) -> None:
    env = {"SOLLOL_DASHBOARD_TOKEN": TOKEN}
    with (
        server_process("dashboard", env=env, open_files=1024) as server,
        held_sockets(server.port, 1_100) as attacker,
    ):
        authorized = {"Authorization": f"Bearer {TOKEN}"}
        health = httpx.get(f"{server.url}/healthz", headers=authorized, timeout=10)
        page_config = httpx.get(f"{server.url}/api/config", headers=authorized, timeout=10)
        still_held = sum(not closed_by_the_server(sock) for sock in attacker)

    assert (health.status_code, page_config.status_code) == (200, 200), health.text
    assert still_held > 500  # the attacker really held sockets meanwhile


def test_a_connection_that_never_finishes_its_request_head_is_closed(dashboard: DashboardServer) -> None:
    with held_sockets(dashboard.port, 2) as (silent, half_sent):
        eventually(
            lambda: closed_by_the_server(silent) and closed_by_the_server(half_sent),
            timeout=REQUEST_HEAD_SECONDS + 20,
            interval=0.5,
            what="idle and half-sent connections to be closed",
        )
