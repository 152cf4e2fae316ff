"""The page with a token in real Chromium: a login link becomes the tab's stored token, sent as a
header; the live feeds open with tickets; no cookie is set."""

from __future__ import annotations

import pytest
import redis
from playwright.sync_api import Page, expect
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer, write

pytestmark = pytest.mark.browser
TOKEN = "s3cret-token"


@pytest.fixture
def guarded(start_dashboard: ServerFactory) -> DashboardServer:
    return start_dashboard(token=TOKEN)


def test_the_page_works_with_a_login_link_and_keeps_the_token_out_of_cookies_and_the_url(
    page: Page, guarded: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 3)

    page.goto(f"{guarded.url}/?token={TOKEN}&model=llama3.2%3A3b")
    expect(page.locator("#status")).to_have_text("live · WebSocket")
    write(redis_client, keys[0], 1, start=3)  # through the live feed, opened with a ticket

    expect(page.locator("#events li[data-id]")).to_have_count(4)
    assert "token" not in page.url and "model=llama3.2" in page.url
    assert page.context.cookies() == []
    assert page.evaluate("sessionStorage.getItem('sollol_dashboard_token')") == TOKEN
    page.reload()  # the tab keeps its token
    expect(page.locator("#status")).to_have_text("live · WebSocket")


def test_the_sse_feed_opens_with_a_ticket(
    page: Page, guarded: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    page.goto(f"{guarded.url}/?token={TOKEN}&transport=sse")
    expect(page.locator("#status")).to_have_text("live · SSE")
    write(redis_client, keys[0], 2)

    expect(page.locator("#events li[data-id]")).to_have_count(2)


def test_an_export_link_downloads_with_a_ticket(
    page: Page, guarded: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 2)
    page.goto(f"{guarded.url}/?token={TOKEN}")
    expect(page.locator("#status")).to_have_text("live · WebSocket")

    with page.expect_download() as download:
        page.locator("#export-ndjson").click()

    assert len(download.value.path().read_text(encoding="utf-8").splitlines()) == 2
