"""Safe to leave running: an optional access token on every endpoint, WebSocket Origin checks,
and response headers that keep the page from running anything but its own scripts.

The token (SOLLOL_DASHBOARD_TOKEN) is accepted as `Authorization: Bearer`, as a cookie, or
once as `?token=` on the page, which sets the cookie and redirects to drop it from the URL
(so it does not linger in history). Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sollol_otel.access import bearer_token, token_matches

COOKIE = "sollol_dashboard_token"

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


def cookie_value(token: str) -> str:
    """What the cookie holds: a digest, so the token itself never sits in the browser's cookie jar."""
    return hashlib.sha256(b"sollol-otel-dashboard:" + token.encode()).hexdigest()


def _presented(scope: Scope, token: str) -> tuple[str | None, bool]:
    """The token the client sent (a cookie counts as the token) and whether it came in the query string."""
    headers = Headers(scope=scope)
    bearer = bearer_token(headers)
    if bearer is not None:
        return bearer, False
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is the client's problem, not a crash
        cookie = SimpleCookie()
    if COOKIE in cookie and token_matches(cookie[COOKIE].value, cookie_value(token)):
        return token, False
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    if query.get("token"):
        return query["token"], True
    return None, False


class TokenAuth:
    """Refuses every HTTP request and WebSocket without the token (401 / handshake 403)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        presented, in_query = _presented(scope, self.token)
        if not token_matches(presented, self.token):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "token required"})
                return
            await _send_plain(
                send,
                401,
                b"token required: open the dashboard as /?token=...",
                [(b"www-authenticate", b'Bearer realm="sollol-otel"')],
            )
            return
        if in_query and scope["type"] == "http" and scope["path"] == "/":
            await _redirect_with_cookie(scope, send, self.token)
            return
        await self.app(scope, receive, send)


async def _send_plain(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect_with_cookie(scope: Scope, send: Send, token: str) -> None:
    query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1")) if k != "token"]
    location = "/" + ("?" + urlencode(query) if query else "")
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    cookie = f"{COOKIE}={cookie_value(token)}; Path=/; HttpOnly; SameSite=Strict{secure}"
    await _send_plain(send, 303, b"", [(b"location", location.encode()), (b"set-cookie", cookie.encode())])


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
