"""The page answers "now" and says what it cannot answer, in real headless Chromium: last-minute and
last-5-minutes views, the values under the cursor (the newest bucket included), the busiest node at
a glance, charts that say why a filter left them empty, counts that say when they are partial,
and time ranges back to 30 days or picked by hand."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
import redis
from playwright.sync_api import Page, Route, expect
from web.browser import open_live
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer, write, write_at
from web.test_page_answers import NODES, fallback, node_selected, now_ms, route

from sollol_otel.web import counts

pytestmark = pytest.mark.browser


def readout(page: Page, chart: str) -> str:
    return page.locator(f"#{chart} ~ .readout").inner_text()


def test_the_last_minute_view_shows_only_that_minute_and_the_busiest_node(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    now = now_ms()
    write_at(redis_client, keys[0], now - 240_000, route("four minutes ago"), node_selected(NODES[2]))
    write_at(redis_client, keys[0], now - 20_000, route("just now"), node_selected(NODES[0]),
             node_selected(NODES[0]), node_selected(NODES[1]))  # fmt: skip
    open_live(page, dashboard)
    page.locator(".now-buttons button", has_text="1 min").click()
    expect(page.locator("#events li[data-id]")).to_have_count(4)
    assert "since=1m" in page.url
    expect(page.locator("#status")).to_have_text("live · WebSocket")
    # Its counts grow from when the view began (charts slide): they say since when, not "in range".
    expect(page.locator("#rate")).to_contain_text(re.compile(r" 4 events since \d\d:\d\d:\d\d$"))
    expect(page.locator("#nodes-now")).to_have_text(
        f"Most traffic in the last minute: {NODES[0]} (66.7%, 2 of 3)"
    )
    page.locator(".now-buttons button", has_text="5 min").click()
    expect(page.locator("#events li[data-id]")).to_have_count(6)
    assert "since=5m" in page.url


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")


def test_the_charts_show_the_values_under_the_cursor_and_the_newest_bucket_by_default(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    end = now_ms() // 60_000 * 60_000 - 60_000  # a fixed range: its newest bucket never moves on
    write_at(redis_client, keys[0], end - 120_000, route("older"), route("older"), fallback("f"))
    write_at(redis_client, keys[0], end - 2_000, route("newest"), route("newest"))
    page.goto(f"{dashboard.url}/?since={iso(end - 300_000)}&until={iso(end)}")
    expect(page.locator("#events li[data-id]")).to_have_count(5)
    newest = page.locator("#chart-types ~ .readout")
    expect(newest).to_have_text(re.compile(r"^newest \d\d:\d\d:\d\d–\d\d:\d\d:\d\d: 2 \(ROUTE_DECISION 2\)$"))
    plot = page.locator("#chart-types .u-over").bounding_box()
    assert plot is not None
    right_edge = plot["x"] + plot["width"] - 1  # the newest bar's far end still reads as the newest bucket
    page.mouse.move(right_edge, plot["y"] + plot["height"] / 2)
    expect(newest).to_have_text(re.compile(r"^\d\d:\d\d:\d\d–\d\d:\d\d:\d\d: 2 \(ROUTE_DECISION 2\)$"))
    # Sweep across the plot: one bucket reads the three older events.
    seen = set()
    for step in range(60):
        page.mouse.move(plot["x"] + plot["width"] * step / 60, plot["y"] + plot["height"] / 2)
        seen.add(readout(page, "chart-types"))
    assert any(text.endswith(": 3 (ROUTE_DECISION 2, FALLBACK_TRIGGERED 1)") for text in seen), seen


def test_a_filter_that_empties_a_chart_makes_it_say_why(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write_at(
        redis_client, keys[0], now_ms(), route("r"), node_selected(NODES[0]), fallback("f1"), fallback("f2")
    )
    open_live(page, dashboard, "?event_type=FALLBACK_TRIGGERED")
    expect(page.locator("#events li[data-id]")).to_have_count(2)
    nodes = page.locator("#chart-nodes ~ .empty-note")
    expect(nodes).to_have_text(
        "None of the 2 events in this range names a node or RPC backend. "
        "The event-type filter shows only FALLBACK_TRIGGERED."
    )
    expect(page.locator("#chart-fallbacks ~ .empty-note")).to_have_text(
        "No ROUTE_DECISION or CACHE_HIT events to measure 2 fallbacks against. "
        "The event-type filter shows only FALLBACK_TRIGGERED."
    )
    expect(page.locator("#chart-nodes")).to_have_attribute("aria-label", re.compile("names a node"))
    expect(page.locator("#nodes-now")).to_have_text("No event naming a node in the last minute")
    expect(page.locator("#chart-types ~ .empty-note")).to_be_hidden()
    page.locator("#active button", has_text="event_type=").click()
    expect(nodes).to_be_hidden()


def test_counts_cut_short_by_the_window_say_at_least_and_why(
    page: Page,
    start_dashboard: ServerFactory,
    redis_client: redis.Redis,
    keys: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted from the stream alone (no history yet), whose scan a bound cuts short."""
    monkeypatch.setattr(counts, "MAX_SCAN", 50)  # the dashboard runs in this process: a small scan
    monkeypatch.setattr(counts, "PAGE", 25)
    dashboard = start_dashboard(history_indexer=False)
    write(redis_client, keys[0], 80)
    open_live(page, dashboard)
    expect(page.locator("#rate")).to_contain_text(
        "at least 50 events in range (only the newest 50 were counted)"
    )
    expect(page.locator("#notes")).to_contain_text("The counts cover the newest 50 events of this range only")
    write(redis_client, keys[0], 1, start=80)
    expect(page.locator("#rate")).to_contain_text("at least 51 events in range")


def test_gaps_and_bounded_answers_are_said_when_the_server_reports_them(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    """The history engine adds `gaps` and `bounded`; the page shows what the server's answers carry."""
    write(redis_client, keys[0], 150)  # more than a page: Load older has more to fetch
    gap_ms = now_ms() - 600_000

    def with_gap(route_: Route) -> None:
        answer = route_.fetch().json()
        route_.fulfill(
            json={**answer, "gaps": [{"since": f"{gap_ms}-0", "until": f"{gap_ms + 60_000}-0", "missed": 42}]}
        )

    def bounded(route_: Route) -> None:
        route_.fulfill(json={**route_.fetch().json(), "bounded": True})

    def older_gap(route_: Route) -> None:
        route_.fulfill(json={**route_.fetch().json(), "gaps": [{"message": "12 events lost to a full disk"}]})

    page.route("**/api/stats?*", with_gap)
    page.route("**/api/timeline?*by=node*", bounded)
    page.route("**/api/routing_events?*before=*", older_gap)
    open_live(page, dashboard, "?limit=100")
    start = datetime.fromtimestamp(gap_ms / 1000).strftime("%H:%M:%S")
    expect(page.locator("#notes")).to_contain_text(f"A gap in the events from {start}")
    expect(page.locator("#notes")).to_contain_text(": 42 events are missing")
    expect(page.locator("#notes")).to_contain_text(
        'By node: the busiest are named, the rest counted together as "all others".'
    )
    page.locator("#load-older").click()
    expect(page.locator("#notes")).to_contain_text("12 events lost to a full disk")
    expect(page.locator("#notes")).to_contain_text(": 42 events are missing")


def test_a_picked_range_shows_exactly_its_events_in_the_pages_zone(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    now = now_ms() // 1000 * 1000
    write_at(redis_client, keys[0], now - 3 * 86_400_000, route("three days ago"))
    write_at(redis_client, keys[0], now - 2 * 86_400_000, route("two days ago"))
    write_at(redis_client, keys[0], now - 60_000, route("a minute ago"))
    open_live(page, dashboard)
    page.locator("select[name=since]").select_option("7d")
    expect(page.locator("#events li[data-id]")).to_have_count(3)
    page.locator("select[name=since]").select_option("pick")
    local = lambda ms: datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%dT%H:%M:%S")  # noqa: E731
    page.locator("input[name=from]").fill(local(now - 2 * 86_400_000 - 1000))
    page.locator("input[name=to]").fill(local(now - 86_400_000))
    page.locator("#custom-apply").click()
    expect(page.locator("#status")).to_have_text("time range · not live")
    expect(page.locator("#events li[data-id] .msg")).to_have_text([re.compile("two days ago")])
    assert "since=" in page.url and "until=" in page.url
