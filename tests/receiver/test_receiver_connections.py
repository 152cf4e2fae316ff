"""The receiver stays up for senders while an attacker holds idle and half-sent connections."""

from __future__ import annotations

import httpx
from server_process import held_sockets, server_process
from waiting import eventually
from web.test_limits import closed_by_the_server

from sollol_otel.access import REQUEST_HEAD_SECONDS

TOKEN = "s3nder-token"


def test_an_attacker_holding_1100_sockets_under_a_1024_file_limit_locks_out_no_sender(
    keys: tuple[str, str],
) -> None:
    with (
        server_process("receiver", env={"SOLLOL_COLLECTOR_TOKEN": TOKEN}, open_files=1024) as server,
        held_sockets(server.port, 1_100) as attacker,
    ):
        health = httpx.get(f"{server.url}/healthz", timeout=10)
        export = httpx.post(
            f"{server.url}/v1/logs",
            content=b"{}",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        still_held = sum(not closed_by_the_server(sock) for sock in attacker)

    assert (health.status_code, export.status_code) == (200, 200), health.text
    assert still_held > 500  # the attacker really held sockets meanwhile


def test_a_connection_that_never_finishes_its_request_head_is_closed(keys: tuple[str, str]) -> None:
    with server_process("receiver") as server, held_sockets(server.port, 2) as (silent, half_sent):
        eventually(
            lambda: closed_by_the_server(silent) and closed_by_the_server(half_sent),
            timeout=REQUEST_HEAD_SECONDS + 20,
            interval=0.5,
            what="idle and half-sent connections to be closed",
        )
