"""Times on the page are unambiguous, in real headless Chromium set to New York: the list says its
zone, shows dates for other days and how long ago on hover, the detail agrees with the list, and a
UTC switch moves every time on the page (and stays switched)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from playwright.sync_api import Browser, Page, expect
from web.browser import open_live, page_of
from web.dashboard_harness import DashboardServer, write_at
from web.test_page_answers import now_ms, route

pytestmark = pytest.mark.browser

ZONE = "America/New_York"


@pytest.fixture
def new_york(browser: Browser) -> Iterator[Page]:
    with page_of(browser, viewport={"width": 1280, "height": 800}, timezone_id=ZONE) as page:
        yield page


def list_text(epoch_ms: int, zone: ZoneInfo) -> str:
    """What the list shows for a moment: the time, and the date when it is not today (in `zone`)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, zone)
    clock = moment.strftime("%H:%M:%S.") + f"{epoch_ms % 1000:03d}"
    return clock if moment.date() == datetime.now(zone).date() else f"{moment:%Y-%m-%d} {clock}"


def test_the_list_and_the_detail_show_one_time_in_the_browsers_zone_and_say_which(
    new_york: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    at = now_ms() - 30_000
    write_at(redis_client, keys[0], at, route("now-ish"))
    open_live(new_york, dashboard)
    shown = list_text(at, ZoneInfo(ZONE))
    expect(new_york.locator("#events li[data-id] .time")).to_have_text(shown)
    expect(new_york.locator("#zone-label")).to_have_text(re.compile(rf"times in {ZONE}, UTC[−+]0[45]:00"))
    new_york.locator("#events li[data-id]").click()
    time_row = new_york.locator("#detail-fields tr", has_text="time").first
    expect(time_row).to_contain_text(shown.split(" ")[-1])
    expect(time_row).to_contain_text(f"({ZONE}, UTC")
    expect(time_row).to_contain_text(re.compile(r"\d+ s ago"))


def test_events_from_another_day_carry_their_date_and_a_hover_says_how_long_ago(
    new_york: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    at = now_ms() - 2 * 86_400_000
    write_at(redis_client, keys[0], at, route("two days ago"))
    open_live(new_york, dashboard)
    time = new_york.locator("#events li[data-id] .time")
    expect(time).to_have_text(list_text(at, ZoneInfo(ZONE)))
    assert re.match(r"\d{4}-\d\d-\d\d ", time.inner_text())
    time.hover()
    expect(time).to_have_attribute("title", re.compile(r"^2 d ago \("))


def test_switching_to_utc_moves_every_time_on_the_page_and_is_remembered(
    new_york: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    at = now_ms() - 30_000
    write_at(redis_client, keys[0], at, route("switch"))
    open_live(new_york, dashboard)
    new_york.locator("#zone").select_option("utc")
    utc = ZoneInfo("UTC")
    expect(new_york.locator("#events li[data-id] .time")).to_have_text(list_text(at, utc))
    expect(new_york.locator("#zone-label")).to_have_text("times in UTC")
    new_york.locator("#events li[data-id]").click()
    expect(new_york.locator("#detail-fields tr", has_text="time").first).to_contain_text(
        datetime.fromtimestamp(at / 1000, utc).strftime("%Y-%m-%d %H:%M:%S") + f".{at % 1000:03d} (UTC)"
    )
    readout = new_york.locator("#chart-types + .empty-note + .readout")
    hours = {f"{datetime.now(utc) - timedelta(seconds=s):%H}" for s in (0, 60)}  # the newest bucket's hour
    expect(readout).to_contain_text(re.compile(f"({'|'.join(hours)}):\\d\\d:\\d\\d"))
    new_york.reload()
    expect(new_york.locator("#zone")).to_have_value("utc")
    expect(new_york.locator("#zone option").first).to_have_text(f"local ({ZONE})")
    expect(new_york.locator("#events li[data-id] .time")).to_have_text(list_text(at, utc))


def test_time_axis_labels_name_the_date_once_and_skip_seconds_for_longer_steps(
    new_york: Page, dashboard: DashboardServer
) -> None:
    open_live(new_york, dashboard)
    midnight = datetime.now(ZoneInfo(ZONE)).replace(hour=0, minute=0, second=0, microsecond=0)
    splits = [(midnight + timedelta(hours=h)).timestamp() for h in (-2, -1, 0, 1)]
    labels = new_york.evaluate(
        "async ([splits]) => (await import('/static/js/time.js')).tickLabels(splits, 3600)", [splits]
    )
    yesterday = midnight - timedelta(days=1)
    day = lambda moment: f"{moment:%b} {moment.day}"  # noqa: E731  (en-US, Playwright's default locale)
    assert labels == [f"22:00\n{day(yesterday)}", "23:00", f"00:00\n{day(midnight)}", "01:00"]
    assert new_york.evaluate(
        "async ([splits]) => (await import('/static/js/time.js')).tickLabels(splits, 10)", [splits[2:]]
    ) == ["00:00:00", "01:00:00"]
