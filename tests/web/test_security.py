"""Safe by default: token on every endpoint, WebSocket Origin checks, CSP without inline script."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer, ws_feed
from websockets.exceptions import InvalidStatus

from sollol_otel.web.app import static_dir
from sollol_otel.web.security import TICKET_SECONDS, TicketBook, issue_ticket

TOKEN = "s3cret-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ENDPOINTS = ["/api/routing_events", "/api/stats", "/api/config", "/healthz", "/api/routing_events/1-0"]
#: What main's dashboard set as its cookie (a fixed digest of the token): what Grafana or Jaeger on
#: another port of the host would have received from the browser, to replay.
OLD_COOKIE = (
    "sollol_dashboard_token=" + hashlib.sha256(b"sollol-otel-dashboard:" + TOKEN.encode()).hexdigest()
)


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


@pytest.mark.parametrize("path", ["/", "/static/js/main.js", "/static/js/auth.js"])
def test_the_page_and_its_files_are_served_without_the_token_and_set_no_cookie(
    guarded: DashboardServer, path: str
) -> None:
    response = httpx.get(f"{guarded.url}{path}", params={"token": TOKEN})
    assert response.status_code == 200 and "set-cookie" not in response.headers


@pytest.mark.parametrize("path", [*ENDPOINTS, "/sse/routing_events"])
def test_a_replayed_cookie_alone_gets_401(guarded: DashboardServer, path: str) -> None:
    assert httpx.get(f"{guarded.url}{path}", headers={"Cookie": OLD_COOKIE}, timeout=10).status_code == 401


async def test_a_websocket_with_a_replayed_cookie_alone_is_refused(guarded: DashboardServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_feed(guarded, additional_headers={"Cookie": OLD_COOKIE}):
            pass
    assert refused.value.response.status_code == 403


def test_a_ticket_is_issued_only_with_the_token(guarded: DashboardServer) -> None:
    assert httpx.post(f"{guarded.url}/api/ticket").status_code == 401
    assert httpx.post(f"{guarded.url}/api/ticket", headers={"Cookie": OLD_COOKIE}).status_code == 401
    issued = httpx.post(f"{guarded.url}/api/ticket", headers=BEARER)
    assert issued.status_code == 200 and issued.json()["expires_in"] == TICKET_SECONDS


async def test_a_feed_ticket_opens_one_feed_once(guarded: DashboardServer) -> None:
    ticket = httpx.post(f"{guarded.url}/api/ticket", headers=BEARER).json()["ticket"]

    async with ws_feed(guarded, f"ticket={ticket}") as client:
        await client.caught_up()
    with pytest.raises(InvalidStatus) as replayed:
        async with ws_feed(guarded, f"ticket={ticket}"):
            pass

    assert replayed.value.response.status_code == 403


def test_a_ticket_is_no_token_for_anything_but_a_feed(guarded: DashboardServer) -> None:
    ticket = httpx.post(f"{guarded.url}/api/ticket", headers=BEARER).json()["ticket"]
    assert httpx.get(f"{guarded.url}/api/config", params={"ticket": ticket}).status_code == 401


def test_a_ticket_expires_and_a_forged_one_is_refused() -> None:
    book = TicketBook(TOKEN)
    issued = issue_ticket(TOKEN, now=1000.0)
    payload, _, signature = issued.rpartition(".")

    assert not book.redeem(issued, now=1000.0 + TICKET_SECONDS + 1)
    assert not book.redeem(issue_ticket("another-token", now=1000.0), now=1000.0)
    assert not book.redeem(
        f"{int(payload.split('.')[0]) + 3600}.{payload.split('.')[1]}.{signature}", now=1000.0
    )
    assert book.redeem(issued, now=1000.0)


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
