"""The Routing Decisions page in real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import pytest
import redis
from playwright.sync_api import Page, expect
from poison import write_poison
from web.browser import open_live, rows
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer, write

pytestmark = pytest.mark.browser

TYPES = ["ROUTE_DECISION", "FALLBACK_TRIGGERED", "COORDINATOR_START", "COORDINATOR_STOP", "CACHE_HIT",
         "OLLAMA_NODE_SELECTED"]  # fmt: skip


def test_events_appear_colour_coded_by_type(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    open_live(page, dashboard)
    for n, event_type in enumerate(TYPES):
        write(redis_client, keys[0], 1, start=n, event_type=event_type)
    expect(page.locator("#events li[data-id]")).to_have_count(len(TYPES))
    colours = [
        page.locator(f"#events li.t-{event_type.lower()} .type").evaluate("e => getComputedStyle(e).color")
        for event_type in TYPES
    ]
    plain = page.locator("#shown").evaluate("e => getComputedStyle(e).color")
    assert len(set(colours)) == len(TYPES) and plain not in colours


def test_view_keeps_the_newest_100(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 120)
    open_live(page, dashboard)
    write(redis_client, keys[0], 30, start=120)
    expect(page.locator("#events li[data-id]").last).to_contain_text("#149")
    expect(page.locator("#shown")).to_have_text("100 events")
    page.locator("#pause").click()  # rows out of view on a busy page are drawn once the list stops
    expect(page.locator("#events li[data-id]")).to_have_count(100)
    assert rows(page)[0].endswith("#50")


def test_scrolling_up_pauses_and_shows_how_many_are_new(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 80)
    open_live(page, dashboard)
    expect(page.locator("#events li[data-id]")).to_have_count(80)
    page.locator("#events").hover()
    page.mouse.wheel(0, -5000)
    expect(page.locator("#shown")).to_contain_text("paused")
    write(redis_client, keys[0], 5, start=80)
    expect(page.locator("#new-events")).to_have_text("5 new ↓")
    assert rows(page)[-1].endswith("#79")
    page.locator("#new-events").click()
    expect(page.locator("#events li[data-id]").last).to_contain_text("#84")
    expect(page.locator("#new-events")).to_be_hidden()


def test_filters_come_from_the_url_and_the_form_writes_them_back(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 3)
    write(redis_client, keys[0], 2, start=3, event_type="FALLBACK_TRIGGERED", from_backend="ollama")
    open_live(page, dashboard, "?event_type=FALLBACK_TRIGGERED")
    expect(page.locator("#events li[data-id]")).to_have_count(2)
    page.locator("details.multi summary").click()
    page.locator("#type-options input[value=FALLBACK_TRIGGERED]").uncheck()
    page.locator("input[name=model]").fill("llama3.2:3b")
    page.locator("#filters button[type=submit]").click()
    expect(page.locator("#events li[data-id]")).to_have_count(5)
    assert "model=llama3.2%3A3b" in page.url and "event_type" not in page.url


def test_page_reconnects_after_the_server_restarts_without_losing_or_repeating(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 3)
    open_live(page, dashboard)
    expect(page.locator("#events li[data-id]")).to_have_count(3)
    dashboard.stop()
    expect(page.locator("#status")).to_contain_text("retrying")
    write(redis_client, keys[0], 4, start=3)
    dashboard.start()
    expect(page.locator("#events li[data-id]")).to_have_count(7, timeout=15_000)
    assert [text.rsplit("#", 1)[1] for text in rows(page)] == [str(n) for n in range(7)]


def test_sse_transport_shows_events(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    open_live(page, dashboard, "?transport=sse")
    write(redis_client, keys[0], 2)
    expect(page.locator("#events li[data-id]")).to_have_count(2)


def test_falls_back_to_sse_when_websocket_fails(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    page.route_web_socket("**/ws/routing_events*", lambda ws: ws.close())
    page.goto(dashboard.url)
    expect(page.locator("#status")).to_have_text("live · SSE", timeout=15_000)
    write(redis_client, keys[0], 1)
    expect(page.locator("#events li[data-id]")).to_have_count(1)


def test_event_fields_are_shown_as_text_never_as_markup(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    hostile = '<img src=x onerror="window.pwned=1">'
    open_live(page, dashboard)
    write(redis_client, keys[0], 1, model=hostile, event_type="<b>X</b>")
    expect(page.locator("#events li[data-id] .msg")).to_contain_text(hostile)
    page.locator("#events li[data-id]").click()
    expect(page.locator("#detail-fields")).to_contain_text(hostile)
    assert page.locator("#events img, #details img, #events b").count() == 0
    assert page.evaluate("window.pwned") is None


def test_details_link_to_the_trace(
    page: Page, start_dashboard: ServerFactory, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    server = start_dashboard(trace_url_template="http://localhost:16686/trace/{trace_id}")
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    open_live(page, server)
    write(redis_client, keys[0], 1, trace_id=trace_id)
    page.locator("#events li[data-id]").click()
    expect(page.locator("#trace-link")).to_have_attribute("href", f"http://localhost:16686/trace/{trace_id}")
    expect(page.locator("#detail-fields")).to_contain_text("sufficient_resources #0")


def test_the_page_shows_the_events_around_poison_entries_and_says_what_it_skipped(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 2)
    write_poison(
        redis_client, keys[0]
    )  # among the newest 100: the backlog used to arrive as one dropped frame
    open_live(page, dashboard)
    expect(page.locator("#events li[data-id] .msg").first).to_contain_text("#0")
    write_poison(redis_client, keys[0])
    write(redis_client, keys[0], 1, start=2)
    expect(page.locator("#events li[data-id]").last).to_contain_text("#2")
    expect(page.locator("#events")).to_contain_text("Skipped stream entry")
