"""Who may reach the dashboard: its own Host names only, a token beyond loopback, tokens never logged."""

from __future__ import annotations

import re

import httpx
import pytest
from server_process import server_process
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

ENDPOINTS = ["/", "/api/routing_events", "/api/stats", "/api/config", "/healthz", "/sse/routing_events"]
TOKEN = "s3cret-token-for-the-log-test"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_rebound_host_name_is_refused(dashboard: DashboardServer, path: str) -> None:
    response = httpx.get(f"{dashboard.url}{path}", headers={"Host": f"rebind.evil.example:{dashboard.port}"})
    assert response.status_code == 400


async def test_a_websocket_under_a_rebound_host_name_is_refused(dashboard: DashboardServer) -> None:
    # The page on rebind.evil.example sends its own name as Host and as Origin, so Origin checks pass.
    uri = f"ws://rebind.evil.example:{dashboard.port}/ws/routing_events"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            uri, host="127.0.0.1", port=dashboard.port, origin=f"http://rebind.evil.example:{dashboard.port}"
        ):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 400


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_names_are_served(dashboard: DashboardServer, host: str) -> None:
    assert (
        httpx.get(f"{dashboard.url}/api/config", headers={"Host": f"{host}:{dashboard.port}"}).status_code
        == 200
    )


def test_a_configured_reverse_proxy_name_is_served(start_dashboard: ServerFactory) -> None:
    server = start_dashboard(allowed_hosts=frozenset({"dash.example.com"}))
    assert httpx.get(f"{server.url}/api/config", headers={"Host": "dash.example.com"}).status_code == 200
    assert httpx.get(f"{server.url}/api/config", headers={"Host": "other.example.com"}).status_code == 400


def test_beyond_loopback_without_a_token_one_is_made_and_printed_as_a_login_url(
    keys: tuple[str, str],
) -> None:
    with server_process("dashboard", "--host", "0.0.0.0", env={"SOLLOL_DASHBOARD_TOKEN": ""}) as server:
        login = re.search(r"http://\S+:\d+/\?token=(\S+)", server.stderr)
        assert login is not None, server.stderr
        token = login.group(1)
        assert httpx.get(f"{server.url}/api/config").status_code == 401
        assert (
            httpx.get(f"{server.url}/api/config", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )
        assert httpx.get(f"{server.url}/api/config", headers={"Host": "dashboard.lan"}).status_code == 401


def test_allow_no_token_serves_beyond_loopback_but_only_to_loopback_names(keys: tuple[str, str]) -> None:
    with server_process(
        "dashboard", "--host", "0.0.0.0", "--allow-no-token", env={"SOLLOL_DASHBOARD_TOKEN": ""}
    ) as server:
        assert httpx.get(f"{server.url}/api/config").status_code == 200
        assert (
            httpx.get(f"{server.url}/api/config", headers={"Host": "rebind.evil.example"}).status_code == 400
        )
        assert "without a token" in server.stderr


async def test_the_token_never_appears_in_the_log(keys: tuple[str, str]) -> None:
    with server_process("dashboard", "--host", "127.0.0.1", env={"SOLLOL_DASHBOARD_TOKEN": TOKEN}) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/", params={"token": TOKEN})).status_code == 200
            assert (await client.get("/api/config", params={"token": TOKEN, "x": "1"})).status_code == 200
            issued = await client.post("/api/ticket", headers={"Authorization": f"Bearer {TOKEN}"})
        ws = f"ws://127.0.0.1:{server.port}/ws/routing_events?token={TOKEN}"
        async with connect(ws) as feed:
            await feed.recv()
        ticket = issued.json()["ticket"]
        async with connect(f"ws://127.0.0.1:{server.port}/ws/routing_events?ticket={ticket}") as feed:
            await feed.recv()
    assert '"GET /api/config?token=***&x=1' in server.stderr, server.stderr
    assert "WebSocket /ws/routing_events?token=***" in server.stderr
    assert "WebSocket /ws/routing_events?ticket=***" in server.stderr
    assert TOKEN not in server.stderr and ticket not in server.stderr
