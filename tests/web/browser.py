"""Driving the page in real headless Chromium (Debian's) through Playwright: launch options and the
steps every page test takes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from web.dashboard_harness import DashboardServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def rows(page: Page) -> list[str]:
    return page.locator("#events li[data-id] .msg").all_text_contents()


def open_live(page: Page, server: DashboardServer, query: str = "") -> None:
    page.goto(f"{server.url}/{query}")
    expect(page.locator("#status")).to_have_text("live · WebSocket" if "sse" not in query else "live · SSE")


#: How Chromium logs a request or stream the server ended (network level, not an HTTP status).
DROPPED_CONNECTION = "Failed to load resource: net::"


def dropped(text: str) -> bool:
    """A connection the server ended, or a WebSocket it no longer listens for or resets while stopping
    (a page still open while its test's server stops logs one): no error of the page's. A handshake
    the server answers with a refusal (401) still is."""
    refused = text.startswith("WebSocket connection to ") and (
        "ERR_CONNECTION_REFUSED" in text or "ERR_CONNECTION_RESET" in text
    )
    return text.startswith(DROPPED_CONNECTION) or refused


def watch_errors(page: Page) -> list[str]:
    """The errors the page throws or logs from now on (a connection the server drops, as tests of
    reconnecting make it, is not the page's error)."""
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and not dropped(message.text):
            errors.append(message.text)

    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", console)
    return errors


@contextmanager
def page_of(browser: Browser, *, allow_errors: bool = False, **options: Any) -> Iterator[Page]:
    """A page in a browser context of its own (viewport, colour scheme, time zone: Playwright's
    options), closed after use; fails the test if the page threw or logged an error, unless
    `allow_errors` (a test that makes the server answer 404 or 503 on purpose)."""
    context = browser.new_context(**options)
    page = context.new_page()
    errors = watch_errors(page)
    try:
        yield page
    finally:
        context.close()
    assert allow_errors or errors == [], errors
