"""Safe to leave running: an optional access token on every endpoint, WebSocket Origin checks,
and response headers that keep the page from running anything but its own scripts.

The token (SOLLOL_DASHBOARD_TOKEN) is accepted as `Authorization: Bearer`, or as `?token=` (for
scripts). The page keeps it in the tab's sessionStorage and sends it as that header; its live feeds,
which cannot send headers (WebSocket, EventSource), present a ticket instead: short-lived and
single-use, obtained with the header (POST /api/ticket). Nothing a browser sends by itself is a
credential: browsers send cookies to every port of a host (Grafana, Jaeger beside us would receive
one to replay forever), so there is none. The page and its static files hold no data and are served
to anyone, so a `?token=` login link can reach the page, which keeps the token and cleans the URL.
Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sollol_otel.access import bearer_token, token_matches
from sollol_otel.web.state import state_of

#: Only the page's own files run; no inline script or style; nothing may frame the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
#: Served without the token: the page and its files, which hold no data.
PUBLIC_PATH = "/"
PUBLIC_PREFIX = "/static/"
#: Where a ticket stands in for the token: the feeds and the export download, which browsers open
#: without headers.
TICKET_PATHS = frozenset({"/ws/routing_events", "/sse/routing_events", "/api/export"})
#: How long a ticket can be redeemed after it is issued.
TICKET_SECONDS = 30


def _ticket_key(token: str) -> bytes:
    return hashlib.sha256(b"sollol-otel-dashboard-ticket:" + token.encode()).digest()


def _signature(token: str, payload: str) -> str:
    return hmac.new(_ticket_key(token), payload.encode(), hashlib.sha256).hexdigest()[:32]


def issue_ticket(token: str, now: float | None = None) -> str:
    """A ticket for one feed connection: its expiry and a nonce, signed with a key made from the token
    (so every worker process can check it, and none stores it)."""
    expires = int((time.time() if now is None else now) + TICKET_SECONDS)
    payload = f"{expires}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_signature(token, payload)}"


class TicketBook:
    """Redeems tickets: each once, before it expires. Single use is kept by each worker process for
    the ticket's short life; with several workers a ticket could be redeemed once on each within it."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._used: dict[str, int] = {}  # payload → expiry

    def redeem(self, ticket: str, now: float | None = None) -> bool:
        payload, _, signature = ticket.rpartition(".")
        expires_text = payload.partition(".")[0]
        if not expires_text.isdigit() or not hmac.compare_digest(signature, _signature(self._token, payload)):
            return False
        current = time.time() if now is None else now
        self._used = {used: until for used, until in self._used.items() if until >= current}
        if int(expires_text) < current or payload in self._used:
            return False
        self._used[payload] = int(expires_text)
        return True


def _presented(scope: Scope, tickets: TicketBook) -> tuple[str | None, bool]:
    """The token the client sent, and whether it redeemed a valid ticket for a feed instead."""
    bearer = bearer_token(Headers(scope=scope))
    if bearer is not None:
        return bearer, False
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    if query.get("token"):
        return query["token"], False
    ticket = query.get("ticket", "")
    return None, bool(ticket) and scope["path"] in TICKET_PATHS and tickets.redeem(ticket)


class TokenAuth:
    """Refuses every HTTP request and WebSocket without the token (401 / handshake 403), but for
    the page and its files; a feed may present a ticket instead."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token
        self.tickets = TicketBook(token) if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or self.tickets is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if scope["type"] == "http" and (path == PUBLIC_PATH or path.startswith(PUBLIC_PREFIX)):
            await self.app(scope, receive, send)
            return
        presented, ticketed = _presented(scope, self.tickets)
        if not ticketed and not token_matches(presented, self.token):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "token required"})
                return
            await _send_json(
                send,
                401,
                b'{"error":"token required: open the dashboard as /?token=..."}',
                [(b"www-authenticate", b'Bearer realm="sollol-otel"')],
            )
            return
        await self.app(scope, receive, send)


async def ticket(request: Request) -> Response:
    """`POST /api/ticket`: a ticket for one live feed or download (the token was checked by `TokenAuth`)."""
    token = state_of(request).config.token
    if token is None:
        return JSONResponse({"error": "this dashboard requires no token, so no ticket"}, status_code=404)
    return JSONResponse(
        {"ticket": issue_ticket(token), "expires_in": TICKET_SECONDS}, headers={"Cache-Control": "no-store"}
    )


async def _send_json(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds the CSP and friends to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


def origin_allowed(connection: HTTPConnection, allowed: frozenset[str]) -> bool:
    """A browser's WebSocket must come from this page (or a configured origin): no cross-site hijacking.

    Non-browser clients send no Origin and are let through (the token still applies).
    """
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    host = connection.headers.get("host", "")
    scheme = "https" if connection.url.scheme in ("wss", "https") else "http"
    return origin == f"{scheme}://{host}" or origin in allowed
