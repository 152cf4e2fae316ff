"""Driving the page in real headless Chromium (Debian's) through Playwright: launch options and the
steps every page test takes."""

from __future__ import annotations

from dashboard.dashboard_harness import DashboardServer
from playwright.sync_api import Page, expect

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
