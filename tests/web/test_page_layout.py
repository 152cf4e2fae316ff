"""The page puts its answers first, in real headless Chromium: the events above the fold on a laptop
and a phone, charts that fold away and stay folded, a permalink's detail in view, light and dark
themes, and colours that colour-blind readers can tell apart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import combinations

import pytest
import redis
from playwright.sync_api import Browser, Page, expect
from web.browser import open_live, page_of
from web.dashboard_harness import DashboardServer, write

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=[LAPTOP, PHONE], ids=["1280x800", "390x844"])
def sized(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    with page_of(browser, viewport=request.param) as page:
        yield page


def test_the_newest_events_are_visible_without_scrolling(
    sized: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    page = sized
    write(redis_client, keys[0], 20, model="llama3.2:3b", instance_id="gpu-box-a_4242_1f2e3d4c")
    open_live(page, dashboard)
    expect(page.locator("#events li[data-id]")).to_have_count(20)
    expect(page.locator("#events li[data-id]").last).to_be_in_viewport(ratio=0.9)
    expect(page.locator("#events li[data-id]").nth(-5)).to_be_in_viewport(ratio=0.9)
    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]  # type: ignore[index]


def test_folded_charts_stay_folded_after_a_reload(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 3)
    open_live(page, dashboard)
    list_top = page.locator("#events").bounding_box()["y"]  # type: ignore[index]
    page.locator("#charts-fold > summary").click()
    expect(page.locator("#chart-types")).to_be_hidden()
    assert page.locator("#events").bounding_box()["y"] < list_top - 150  # type: ignore[index]
    kept_as(page, "closed")
    page.reload()
    expect(page.locator("#events li[data-id]")).to_have_count(3)
    expect(page.locator("#chart-types")).to_be_hidden()
    page.locator("#charts-fold > summary").click()
    expect(page.locator("#chart-types canvas").first).to_be_visible()
    kept_as(page, "open")
    page.reload()
    expect(page.locator("#chart-types canvas").first).to_be_visible()


def kept_as(page: Page, state: str) -> None:
    """Waits for the fold's state to be stored: a details element's toggle event comes a task later."""
    page.wait_for_function("(state) => localStorage.getItem('sollol-otel.charts') === state", arg=state)


def test_a_permalink_opens_its_event_in_view_on_a_phone(
    browser: Browser, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    with page_of(browser, viewport=PHONE) as page:
        ids = write(redis_client, keys[0], 60)
        page.goto(f"{dashboard.url}/?id={ids[10]}")
        expect(page.locator("#detail-fields")).to_contain_text("sufficient_resources #10")
        expect(page.locator("#details")).to_be_in_viewport()
        expect(page.locator(f'#events li[data-id="{ids[10]}"]')).to_have_class(re.compile("selected"))


def test_a_link_to_a_gone_event_keeps_saying_so_while_events_arrive(
    browser: Browser, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    with page_of(browser, viewport=LAPTOP, allow_errors=True) as page:  # the browser logs the 404
        page.goto(f"{dashboard.url}/?id=1700000000000-0")
        missing = page.locator("#details-missing")
        expect(missing).to_have_text(
            "Event 1700000000000-0: 1700000000000-0 is not in the stream (trimmed, or never written)"
        )
        expect(page.locator("#details")).to_be_in_viewport()
        write(redis_client, keys[0], 3)
        expect(page.locator("#events li[data-id]")).to_have_count(3)
        expect(missing).to_be_visible()
        page.locator("#close-details").click()
        expect(page.locator("#details")).to_be_hidden()
        assert "id=" not in page.url


def background(page: Page) -> str:
    return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))


@pytest.fixture(params=["light", "dark"])
def scheme(request: pytest.FixtureRequest) -> str:
    """The system's colour scheme the browser reports."""
    return str(request.param)


@pytest.fixture
def themed(browser: Browser, scheme: str) -> Iterator[Page]:
    with page_of(browser, viewport=LAPTOP, color_scheme=scheme) as page:
        yield page


def test_the_theme_follows_the_system_and_the_toggle_overrides_it_for_good(
    themed: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str], scheme: str
) -> None:
    page = themed
    write(redis_client, keys[0], 1)
    open_live(page, dashboard)
    swatch = page.locator("#legend-types .swatch")
    colour = swatch.evaluate("e => getComputedStyle(e).backgroundColor")
    system = background(page)
    assert (system == "rgb(247, 248, 250)") == (scheme == "light")
    other = "dark" if scheme == "light" else "light"
    page.locator("#theme").click()
    expect(page.locator("html")).to_have_attribute("data-theme", other)
    assert background(page) != system
    expect(swatch).not_to_have_css("background-color", colour)  # the charts redrawn for the theme
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", other)
    assert background(page) != system


# Machado, Oliveira & Fernandes (2009), severity 1.0, in linear RGB: how a colour looks to a reader
# without working M (deuteranopia) or L (protanopia) cones.
SIMULATIONS = {
    "normal": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "deuteranopia": (
        (0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881),
    ),
    "protanopia": (
        (0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998),
    ),
}  # fmt: skip
#: The types a busy router writes together; each must stand apart from the others.
COMMON_TYPES = ["ROUTE_DECISION", "RPC_BACKEND_SELECTED", "FALLBACK_TRIGGERED", "CACHE_HIT",
                "OLLAMA_NODE_SELECTED", "COORDINATOR_STOP", "TASK_START", "TASK_COMPLETE"]  # fmt: skip
#: CIE76 distance below which two colours read as "the same colour" at a glance.
MIN_DELTA_E = 12.0


def lab(rgb: tuple[float, ...], simulation: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour as the simulated eye sees it."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    seen = [
        max(0.0, min(1.0, sum(m * c for m, c in zip(row, linear, strict=True))))
        for row in SIMULATIONS[simulation]
    ]
    r, g, b = seen
    xyz = (
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    )
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_event_type_colours_stay_apart_for_colour_blind_readers(
    themed: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str], scheme: str
) -> None:
    page = themed
    for n, event_type in enumerate(COMMON_TYPES):
        write(redis_client, keys[0], 1, start=n, event_type=event_type)
    open_live(page, dashboard)
    expect(page.locator("#events li[data-id]")).to_have_count(len(COMMON_TYPES))
    css = {
        event_type: page.locator(f"#events li.t-{event_type.lower()} .type").evaluate(
            "e => getComputedStyle(e).color"
        )
        for event_type in COMMON_TYPES
    }
    swatches = page.locator("#legend-types .swatch").evaluate_all(
        "s => s.map(e => getComputedStyle(e).backgroundColor)"
    )
    assert sorted(swatches) == sorted(css.values())  # the chart draws each type in the list's colour
    colours = {name: tuple(float(c) for c in re.findall(r"[\d.]+", value)[:3]) for name, value in css.items()}
    for simulation in SIMULATIONS:
        for (a, ca), (b, cb) in combinations(colours.items(), 2):
            distance = (
                sum((x - y) ** 2 for x, y in zip(lab(ca, simulation), lab(cb, simulation), strict=True))
                ** 0.5
            )
            assert distance >= MIN_DELTA_E, (
                f"{a} and {b} look alike ({simulation}, {scheme}): ΔE {distance:.1f}"
            )


def test_value_axis_labels_fit_their_axis_on_a_phone(
    browser: Browser, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    with page_of(browser, viewport=PHONE) as page:
        write(redis_client, keys[0], 12_000)  # one bucket of 12,000: the axis reads up to "12,000"
        open_live(page, dashboard)
        expect(page.locator("#rate")).to_contain_text("12000 events in range")
        page.locator("#chart-types").scroll_into_view_if_needed()
        axis_width = (
            page.locator("#chart-types .u-axis").nth(1).evaluate("e => e.getBoundingClientRect().width")
        )
        label_width = page.evaluate(
            """() => {
                const ctx = document.createElement("canvas").getContext("2d");
                ctx.font = '12px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif';
                return ctx.measureText("12,000").width;
            }"""
        )
        assert axis_width >= label_width + 10  # the label beside its tick mark (10 px), never cut off
