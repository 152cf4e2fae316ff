"""The page answers questions at a glance, in real headless Chromium: charts with exact totals,
search, event types, click-to-filter, a brushed time range, a request's chain, a permalink, copy
as JSON, a pause that says why, reasons when nothing matches, and a layout that holds at 360 px."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from playwright.sync_api import Browser, Page, expect
from web.browser import open_live, page_of, rows
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer, write, write_at

pytestmark = pytest.mark.browser

TRACE = "0af7651916cd43dd8448eb211c80319c"
NODES = ["10.0.0.21:11434", "10.0.0.22:11434", "10.0.0.23:11434"]
INSTANCES = ["gpu-box-a_4242_1f2e3d4c", "gpu-box-b_5151_aa00bb11", "laptop_777_c0ffee00"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


def route(reason: str, **changes: Any) -> dict[str, Any]:
    return {"reason": reason, **changes}


def fallback(reason: str, **changes: Any) -> dict[str, Any]:
    return {
        "event_type": "FALLBACK_TRIGGERED",
        "from_backend": "ollama",
        "backend": "rpc",
        "reason": reason,
        **changes,
    }


def node_selected(node: str, **changes: Any) -> dict[str, Any]:
    return {"event_type": "OLLAMA_NODE_SELECTED", "node_url": node, "reason": "lowest_latency", **changes}


def now_ms() -> int:
    return int(time.time() * 1000)


def label(page: Page, chart: str) -> str:
    return page.locator(f"#{chart}").get_attribute("aria-label") or ""


def test_charts_are_labelled_images_with_the_exact_totals_and_follow_the_feed(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    a, b = ({"instance_id": name} for name in INSTANCES[:2])
    write_at(
        redis_client, keys[0], now_ms() - 60_000,
        route("a", **a), route("b", **a), route("c", **b), route("d", event_type="CACHE_HIT", **b),
        node_selected(NODES[0], **a), node_selected(NODES[0], **b), node_selected(NODES[1], **b),
        fallback("ollama_error: Out of memory", **a), fallback("timeout", **a),
    )  # fmt: skip
    open_live(page, dashboard)
    for chart in ("chart-types", "chart-nodes", "chart-fallbacks", "chart-instances"):
        expect(page.locator(f"#{chart}")).to_have_attribute("role", "img")
        assert page.locator(f"#{chart} canvas").first.bounding_box()["width"] > 100  # type: ignore[index]
    assert re.search(
        r"9 events: OLLAMA_NODE_SELECTED 3, ROUTE_DECISION 3, FALLBACK_TRIGGERED 2, CACHE_HIT 1$",
        label(page, "chart-types"),
    )
    assert label(page, "chart-nodes").endswith(f"3 events: {NODES[0]} 2, {NODES[1]} 1; 6 events name none")
    assert "2 fallbacks per 4 routing decisions (50%)" in label(page, "chart-fallbacks")
    assert "top reasons: ollama_error: Out of memory 1, timeout 1" in label(page, "chart-fallbacks")
    assert label(page, "chart-instances").endswith(f"9 events: {INSTANCES[0]} 5, {INSTANCES[1]} 4")

    write(redis_client, keys[0], 3, instance_id=INSTANCES[2])
    expect(page.locator("#chart-types")).to_have_attribute(
        "aria-label", re.compile(r"12 events: ROUTE_DECISION 6,")
    )
    expect(page.locator("#chart-instances")).to_have_attribute("aria-label", re.compile(f"{INSTANCES[2]} 3"))
    expect(page.locator("#rate")).to_contain_text("12 events in range")


def test_search_box_finds_text_anywhere_and_keeps_it_in_the_url(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write_at(
        redis_client,
        keys[0],
        now_ms(),
        route("fits"),
        fallback("ollama_error: Out of Memory"),
        route("also fits"),
    )
    open_live(page, dashboard)
    expect(page.locator("#events li[data-id]")).to_have_count(3)
    search = page.locator("input[type=search]")
    search.fill("out of memory")
    search.press("Enter")
    expect(page.locator("#events li[data-id]")).to_have_count(1)
    assert rows(page)[0].endswith("ollama_error: Out of Memory")
    assert "q=out+of+memory" in page.url


def test_several_event_types_are_shown_together(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write_at(
        redis_client,
        keys[0],
        now_ms(),
        route("r"),
        fallback("f"),
        node_selected(NODES[0]),
        route("c", event_type="CACHE_HIT"),
    )
    open_live(page, dashboard)
    page.locator("details.multi summary").click()
    page.locator("#type-options input[value=FALLBACK_TRIGGERED]").check()
    page.locator("#type-options input[value=CACHE_HIT]").check()
    expect(page.locator("#types-summary")).to_have_text("2 types")
    page.locator("#filters button[type=submit]").click()
    expect(page.locator("#events li[data-id] .type")).to_have_text(["FALLBACK_TRIGGERED", "CACHE_HIT"])
    assert sorted(parse_qs(urlsplit(page.url).query)["event_type"]) == ["CACHE_HIT", "FALLBACK_TRIGGERED"]


def test_counters_legends_and_detail_fields_filter_by_what_they_name(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write_at(
        redis_client, keys[0], now_ms(),
        route("r1", backend="ollama"), fallback("f1"), node_selected(NODES[0], instance_id=INSTANCES[0]),
        node_selected(NODES[1], instance_id=INSTANCES[1]), route("r2", model="qwen2.5:32b"),
    )  # fmt: skip
    open_live(page, dashboard)
    page.locator("#count-backends button", has_text="rpc 1").click()
    expect(page.locator("#events li[data-id]")).to_have_count(1)
    assert "backend=rpc" in page.url
    page.locator("#active button", has_text="backend=rpc").click()  # removes it again
    expect(page.locator("#events li[data-id]")).to_have_count(5)

    page.locator("#legend-nodes button", has_text=NODES[1]).click()
    expect(page.locator("#events li[data-id] .msg")).to_have_text([re.compile(re.escape(NODES[1]))])
    assert f"node={NODES[1].replace(':', '%3A')}" in page.url

    page.locator("#active button", has_text="node=").click()
    page.locator("#events li[data-id]", has_text="r2").click()
    page.locator("#detail-fields button", has_text="qwen2.5:32b").click()
    expect(page.locator("#events li[data-id]")).to_have_count(1)
    assert "model=qwen2.5%3A32b" in page.url
    expect(page.locator("#details")).to_be_hidden()


def test_brushing_the_chart_shows_that_time_range_and_back_to_live_returns(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    now = now_ms()
    write_at(redis_client, keys[0], now - 300_000, route("old 1"), route("old 2"))
    write_at(redis_client, keys[0], now - 150_000, route("middle 1"), route("middle 2"), fallback("middle 3"))
    write_at(redis_client, keys[0], now - 5_000, route("new"))
    open_live(page, dashboard)
    expect(page.locator("#events li[data-id]")).to_have_count(6)
    plot = page.locator("#chart-types .u-over").bounding_box()
    assert plot is not None
    y = plot["y"] + plot["height"] / 2
    page.mouse.move(plot["x"] + plot["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] * 0.7, y, steps=5)
    page.mouse.up()
    expect(page.locator("#status")).to_have_text("time range · not live")
    expect(page.locator("#events li[data-id] .msg")).to_have_text(
        [re.compile(f"middle {n}") for n in (1, 2, 3)]
    )
    assert "since=" in page.url and "until=" in page.url
    expect(page.locator("#pause")).to_be_hidden()
    assert label(page, "chart-types").endswith("3 events: ROUTE_DECISION 2, FALLBACK_TRIGGERED 1")

    page.locator("#active button.range").click()
    expect(page.locator("#status")).to_have_text("live · WebSocket")
    expect(page.locator("#events li[data-id]")).to_have_count(6)
    assert "since=" not in page.url


def test_an_events_request_chain_lists_its_trace_in_order_with_the_trace_link(
    page: Page, start_dashboard: ServerFactory, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    server = start_dashboard(trace_url_template="http://localhost:16686/trace/{trace_id}")
    other = "22222222222222222222222222222222"
    task = {"event_type": "TASK_COMPLETE", "task_id": "t-1", "worker": "w-1", "duration": 1.5}
    write_at(
        redis_client, keys[0], now_ms(),
        route("chain: routed", trace_id=TRACE), route("unrelated", trace_id=other),
        node_selected(NODES[0], trace_id=TRACE, reason="chain: node"),
        fallback("chain: fell back", trace_id=TRACE), route("no trace"), {**task, "trace_id": TRACE},
    )  # fmt: skip
    open_live(page, server)
    page.locator("#events li[data-id]", has_text="chain: node").click()
    chain = page.locator("#chain-events button")
    expect(chain).to_have_count(4)
    expect(chain).to_have_text(
        [
            re.compile("ROUTE_DECISION: .*chain: routed"),
            re.compile(r"OLLAMA_NODE_SELECTED: .*chain: node \(this event\)"),
            re.compile("FALLBACK_TRIGGERED: .*chain: fell back"),
            re.compile("TASK_COMPLETE: .*t-1"),
        ]
    )
    expect(page.locator("#chain-title")).to_have_text(f"Request chain: 4 events of trace {TRACE}")
    expect(page.locator("#trace-link")).to_have_attribute("href", f"http://localhost:16686/trace/{TRACE}")
    chain.nth(2).click()
    expect(page.locator("#details-title")).to_have_text("FALLBACK_TRIGGERED")
    expect(chain.nth(2)).to_have_attribute("aria-current", "true")


def test_a_permalink_opens_one_event_and_the_url_follows_the_open_event(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    ids = write_at(redis_client, keys[0], now_ms(), route("first"), fallback("the one"), route("last"))
    page.goto(f"{dashboard.url}/?id={ids[1]}")
    expect(page.locator("#details-title")).to_have_text("FALLBACK_TRIGGERED")
    expect(page.locator("#detail-fields")).to_contain_text("the one")
    expect(page.locator(f'#events li[data-id="{ids[1]}"]')).to_have_class(re.compile("selected"))
    expect(page.locator("#permalink")).to_have_attribute("href", f"/?id={ids[1]}")
    page.locator("#close-details").click()
    assert "id=" not in page.url
    page.locator(f'#events li[data-id="{ids[2]}"]').click()
    assert f"id={ids[2]}" in page.url


def test_copy_as_json_puts_the_event_on_the_clipboard(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard.url)
    [entry_id] = write_at(redis_client, keys[0], now_ms(), fallback("copied", trace_id=TRACE))
    open_live(page, dashboard)
    page.locator("#events li[data-id]").click()
    page.locator("#copy-json").click()
    expect(page.locator("#copy-status")).to_have_text("Copied as JSON.")
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert (copied["stream_id"], copied["reason"], copied["from_backend"], copied["trace_id"]) == (
        entry_id, "copied", "ollama", TRACE,
    )  # fmt: skip


def test_an_open_event_pauses_the_list_and_both_the_pane_and_the_button_say_so(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 3)
    open_live(page, dashboard)
    page.locator("#events li[data-id]").first.click()
    expect(page.locator("#pause")).to_have_text("Resume")
    expect(page.locator("#pause")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#pause-note")).to_have_text(
        "The list is paused because an event is open. Charts and counters stay live."
    )
    write(redis_client, keys[0], 2, start=3)
    expect(page.locator("#pause-note")).to_contain_text(
        "paused because an event is open; 2 new events waiting"
    )
    expect(page.locator("#chart-types")).to_have_attribute("aria-label", re.compile("5 events"))
    assert len(rows(page)) == 3
    page.locator("#details-resume").click()
    expect(page.locator("#events li[data-id]")).to_have_count(5)
    expect(page.locator("#pause")).to_have_text("Pause")
    expect(page.locator("#pause-note")).to_have_text("The list is live: new events keep arriving.")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("?model=3b", "model '3b' is only part of llama3.2:3b"),
        ("?event_type=ROUTE_DESCISION", "ROUTE_DESCISION: not a type SOLLOL writes"),
        ("?event_type=CACHE_HIT", "no CACHE_HIT event was written; types present: ROUTE_DECISION"),
    ],
)
def test_a_filter_that_matches_nothing_says_why(
    page: Page,
    dashboard: DashboardServer,
    redis_client: redis.Redis,
    keys: tuple[str, str],
    query: str,
    reason: str,
) -> None:
    write(redis_client, keys[0], 2)
    open_live(page, dashboard, query)
    expect(page.locator("#hints")).to_contain_text("Nothing matches these filters:")
    expect(page.locator("#hints")).to_contain_text(reason)
    write(redis_client, keys[0], 1, model="3b-special", event_type="CACHE_HIT")
    if query == "?event_type=CACHE_HIT":  # something matches now: the reasons go
        expect(page.locator("#hints")).to_be_hidden()


def test_at_360_px_nothing_overflows_and_times_stay_on_one_line(
    browser: Browser, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    with page_of(browser, viewport={"width": 360, "height": 740}) as page:
        write(redis_client, keys[0], 5, instance_id="a-very-long-instance-name_" + "x" * 60, reason="y" * 300)
        open_live(page, dashboard)
        expect(page.locator("#events li[data-id]")).to_have_count(5)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        times = page.locator("#events li[data-id] .time")
        line = float(times.first.evaluate("t => parseFloat(getComputedStyle(t).lineHeight)"))
        assert all(
            box["height"] < 1.5 * line for box in (times.nth(i).bounding_box() for i in range(5)) if box
        )
        for chart in ("chart-types", "chart-nodes", "chart-fallbacks", "chart-instances"):
            box = page.locator(f"#{chart}").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
        page.locator("#events li[data-id]").first.click()
        details = page.locator("#details").bounding_box()
        assert details is not None and details["x"] + details["width"] <= 360


def busy_cluster(client: redis.Redis, stream: str, minutes: int = 15) -> None:
    """A quarter of an hour of three instances routing requests, the way the demo's do."""
    rng = random.Random(7)
    models = {"llama3.2:3b": 8, "llama3.1:8b": 5, "codellama:13b": 3, "llama3.1:70b": 1}
    start = now_ms() - minutes * 60_000
    for step in range(minutes * 12):
        events: list[dict[str, Any]] = []
        for request in range(rng.randint(1, 4) + (step // 40)):
            model = rng.choices(list(models), weights=list(models.values()))[0]
            instance = rng.choice(INSTANCES)
            trace = f"{step:016x}{request:016x}"
            common = {"model": model, "instance_id": instance, "trace_id": trace}
            task = {"task_id": f"task-{step}-{request}", "worker": "worker-1", **common}
            events.append({"event_type": "TASK_START", **task})
            if model == "llama3.1:70b":
                events.append(route("insufficient_ollama_resources", backend="rpc", **common))
            else:
                events.append(route("sufficient_resources", **common))
                if rng.random() < 0.12 + (0.2 if 60 < step < 90 else 0):
                    events.append(fallback(rng.choice(["ollama_error: Out of memory", "timeout"]), **common))
                else:
                    events.append(node_selected(rng.choices(NODES, weights=[5, 3, 1])[0], **common))
            events.append({"event_type": "TASK_COMPLETE", "duration": rng.uniform(0.4, 3), **task})
        write_at(client, stream, start + step * 5000, *events)


def test_screenshot_of_the_page(
    browser: Browser,
    dashboard: DashboardServer,
    redis_client: redis.Redis,
    keys: tuple[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """The README's picture, taken here; `--update-screenshot` saves it to docs/dashboard.png."""
    busy_cluster(redis_client, keys[0])
    with page_of(browser, viewport={"width": 1280, "height": 800}, color_scheme="dark") as page:
        open_live(page, dashboard, "?since=15m")
        expect(page.locator("#chart-types")).to_have_attribute("aria-label", re.compile(r"[1-9]\d* events"))
        page.locator("#events li[data-id].t-ollama_node_selected").last.click()
        expect(page.locator("#chain-events li")).not_to_have_count(0)
        target = SCREENSHOT if request.config.getoption("--update-screenshot") else tmp_path / "dashboard.png"
        target.parent.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=target, full_page=True)
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_long_list_is_drawn_whole_and_in_order(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    """250 rows are drawn a hundred at a time, newest first; the list ends up whole, oldest on top."""
    ids = write(redis_client, keys[0], 300)
    open_live(page, dashboard, "?limit=250")
    expect(page.locator("#events li[data-id]")).to_have_count(250)
    assert page.locator("#events li[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)") == ids[50:]
