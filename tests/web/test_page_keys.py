"""The page answers as you type and from the keyboard, in real headless Chromium: search without
Enter, event types without Apply, `/`, space, j/k and Escape, and a menu that closes by itself."""

from __future__ import annotations

import re

import pytest
import redis
from playwright.sync_api import Page, expect
from web.browser import open_live
from web.dashboard_harness import DashboardServer, write, write_at
from web.test_page_answers import fallback, now_ms, route

pytestmark = pytest.mark.browser


def test_search_applies_as_you_type(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write_at(redis_client, keys[0], now_ms(), route("fits"), fallback("ollama_error: Out of memory"))
    open_live(page, dashboard)
    expect(page.locator("#events li[data-id]")).to_have_count(2)
    page.locator("input[name=q]").press_sequentially("out of mem", delay=20)
    expect(page.locator("#events li[data-id]")).to_have_count(1)
    assert "q=out+of+mem" in page.url
    expect(page.locator("input[name=q]")).to_be_focused()
    expect(page.locator("input[name=q]")).to_have_value("out of mem")


def test_event_types_apply_when_ticked_and_the_menu_closes_on_escape_and_outside_clicks(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write_at(redis_client, keys[0], now_ms(), route("r"), fallback("f"))
    open_live(page, dashboard)
    menu = page.locator("#types-menu")
    menu.locator("summary").click()
    page.locator("#type-options input[value=FALLBACK_TRIGGERED]").check()
    expect(page.locator("#events li[data-id] .type")).to_have_text(["FALLBACK_TRIGGERED"])
    assert "event_type=FALLBACK_TRIGGERED" in page.url
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    menu.locator("summary").click()
    expect(menu).to_have_attribute("open", "")
    page.locator("h1").click()
    expect(menu).not_to_have_attribute("open", "")


def test_keyboard_slash_searches_space_pauses_j_and_k_move_and_escape_closes(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 5)
    open_live(page, dashboard)
    expect(page.locator("#events li[data-id]")).to_have_count(5)
    page.locator("h1").click()

    page.keyboard.press(" ")
    expect(page.locator("#pause")).to_have_attribute("aria-pressed", "true")
    write(redis_client, keys[0], 1, start=5)
    expect(page.locator("#new-events")).to_have_text("1 new ↓")
    page.keyboard.press(" ")
    expect(page.locator("#events li[data-id]")).to_have_count(6)

    page.keyboard.press("k")  # the newest row first
    expect(page.locator("#detail-fields")).to_contain_text("sufficient_resources #5")
    page.keyboard.press("k")
    page.keyboard.press("k")
    expect(page.locator("#detail-fields")).to_contain_text("sufficient_resources #3")
    expect(page.locator("#events li.selected")).to_contain_text("#3")
    page.keyboard.press("j")
    expect(page.locator("#detail-fields")).to_contain_text("sufficient_resources #4")
    assert re.search(r"id=\d+-\d+", page.url)

    page.keyboard.press("Escape")
    expect(page.locator("#details")).to_be_hidden()
    expect(page.locator("#pause")).to_have_attribute("aria-pressed", "false")

    page.keyboard.press("/")
    expect(page.locator("input[name=q]")).to_be_focused()
    page.keyboard.type("j k")  # typed into the search, not taken as keys
    expect(page.locator("#details")).to_be_hidden()
    expect(page.locator("input[name=q]")).to_have_value("j k")
