"""`sollol-otel collector` as users start it: a real process, the dashboard's access rules, its banner."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from receiver.receiver_harness import RunningReceiver
from server_process import server_process

from sollol_otel.receiver import ReceiverConfig

EMPTY_LOGS = {"Content-Type": "application/json"}


def export(url: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/logs", content=b"{}", headers={**EMPTY_LOGS, **headers}, timeout=10)


def test_beyond_loopback_without_a_token_one_is_made_and_printed(redis_url: str) -> None:
    env = {
        "SOLLOL_REDIS_URL": redis_url.replace("redis://", "redis://:hunter2@"),
        "SOLLOL_COLLECTOR_TOKEN": "",
    }
    with server_process("receiver", "--host", "0.0.0.0", env=env) as server:
        printed = re.search(r"Authorization: Bearer (\S+)", server.stderr)
        assert printed is not None, server.stderr
        assert export(server.url).status_code == 401
        assert export(server.url, Authorization=f"Bearer {printed.group(1)}").status_code == 200
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert ":***@" in server.stderr and "hunter2" not in server.stderr


def test_allow_no_token_serves_beyond_loopback_to_loopback_and_configured_names(redis_url: str) -> None:
    env = {
        "SOLLOL_REDIS_URL": redis_url,
        "SOLLOL_COLLECTOR_TOKEN": "",
        "SOLLOL_COLLECTOR_ALLOWED_HOSTS": "sollol-collector",
    }
    with server_process("receiver", "--host", "0.0.0.0", "--allow-no-token", env=env) as server:
        assert export(server.url).status_code == 200
        assert export(server.url, Host="sollol-collector:4319").status_code == 200
        assert export(server.url, Host="rebind.evil.example").status_code == 400
    assert "without a token" in server.stderr


def test_a_rebound_host_name_is_refused(start_receiver: Callable[..., RunningReceiver]) -> None:
    receiver = start_receiver()
    assert export(receiver.url, Host="rebind.evil.example").status_code == 400
    assert export(receiver.url, Host="localhost").status_code == 200


def test_a_configured_host_name_is_served(start_receiver: Callable[..., RunningReceiver]) -> None:
    receiver = start_receiver(ReceiverConfig(allowed_hosts=frozenset({"collector.internal"})))
    assert export(receiver.url, Host="collector.internal:4319").status_code == 200
