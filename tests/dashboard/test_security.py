"""Safe by default: token on every endpoint, WebSocket Origin checks, CSP without inline script."""

from __future__ import annotations

import re

import httpx
import pytest
from dashboard.conftest import ServerFactory
from dashboard.dashboard_harness import DashboardServer, ws_feed
from websockets.exceptions import InvalidStatus

from sollol_otel.web.app import static_dir

TOKEN = "s3cret-token"
ENDPOINTS = ["/", "/api/routing_events", "/api/stats", "/api/config", "/healthz", "/static/js/main.js"]


@pytest.fixture
def guarded(start_dashboard: ServerFactory) -> DashboardServer:
    return start_dashboard(token=TOKEN)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_refuses_requests_without_the_token(guarded: DashboardServer, path: str) -> None:
    assert httpx.get(f"{guarded.url}{path}").status_code == 401


def test_sse_refuses_a_wrong_token(guarded: DashboardServer) -> None:
    response = httpx.get(f"{guarded.url}/sse/routing_events", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


async def test_websocket_refuses_the_handshake_without_the_token(guarded: DashboardServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_feed(guarded):
            pass
    assert refused.value.response.status_code == 403


async def test_websocket_accepts_the_bearer_token(guarded: DashboardServer) -> None:
    async with ws_feed(guarded, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        await client.caught_up()


def test_token_in_the_page_url_becomes_a_cookie_and_leaves_the_url(guarded: DashboardServer) -> None:
    with httpx.Client(base_url=guarded.url) as client:
        first = client.get("/", params={"token": TOKEN, "model": "m"})
        assert (first.status_code, first.headers["location"]) == (303, "/?model=m")
        assert TOKEN not in first.headers["set-cookie"]
        assert "HttpOnly" in first.headers["set-cookie"]
        assert client.get("/api/config").status_code == 200


async def test_websocket_from_another_origin_is_refused(dashboard: DashboardServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_feed(dashboard, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


async def test_websocket_from_the_page_origin_is_accepted(dashboard: DashboardServer) -> None:
    async with ws_feed(dashboard, origin=dashboard.url) as client:  # type: ignore[arg-type]
        await client.caught_up()


def test_page_has_a_csp_that_allows_no_inline_script(dashboard: DashboardServer) -> None:
    response = httpx.get(dashboard.url)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_page_sources_have_no_inline_script_and_no_innerhtml() -> None:
    html = (static_dir() / "index.html").read_text()
    assert all('src="' in tag for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"\son[a-z]+=", html)
    for module in (static_dir() / "js").glob("*.js"):
        assert "innerHTML" not in module.read_text() and "insertAdjacentHTML" not in module.read_text()
