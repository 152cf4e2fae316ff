"""Export what you filtered: `/api/export` streams the filter's and the range's events as NDJSON or
CSV (safe to open in a spreadsheet), and the page's links follow its filters, against real Redis
and real headless Chromium."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
import redis
from playwright.sync_api import Page, expect
from web.browser import open_live
from web.dashboard_harness import DashboardServer, write, write_at
from web.test_page_answers import fallback, now_ms, route

from sollol_otel.web.export import COLUMNS, PAGE


def test_ndjson_holds_exactly_the_filtered_events_in_the_range_oldest_first(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    now = now_ms()
    write_at(redis_client, keys[0], now - 3_600_000, fallback("too old"))
    ids = write_at(
        redis_client, keys[0], now - 60_000, fallback("first"), route("not a fallback"), fallback("second")
    )
    answer = httpx.get(
        f"{dashboard.url}/api/export",
        params={"format": "ndjson", "event_type": "FALLBACK_TRIGGERED", "since": "15m"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-ndjson"
    assert answer.headers["content-disposition"].startswith('attachment; filename="sollol-routing-')
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [(line["stream_id"], line["reason"], line["from_backend"]) for line in lines] == [
        (ids[0], "first", "ollama"), (ids[2], "second", "ollama"),
    ]  # fmt: skip


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_kept_as_text(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    hostile = {
        "model": '=HYPERLINK("http://x")',
        "reason": "+1+1",
        "instance_id": "@SUM(A1)",
        "backend": "-2",
    }
    [entry_id] = write_at(redis_client, keys[0], now_ms(), route("x") | hostile)
    answer = httpx.get(f"{dashboard.url}/api/export", params={"format": "csv"})
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    header, row = list(csv.reader(io.StringIO(answer.text)))
    assert header == list(COLUMNS)
    cells = dict(zip(header, row, strict=True))
    assert cells["stream_id"] == entry_id
    assert (cells["model"], cells["reason"], cells["instance_id"], cells["backend"]) == (
        "'=HYPERLINK(\"http://x\")", "'+1+1", "'@SUM(A1)", "'-2",
    )  # fmt: skip
    assert json.loads(cells["event"])["model"] == hostile["model"]  # the whole event, as written


def test_a_long_export_is_streamed_a_page_at_a_time_and_complete(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    count = PAGE * 2 + 10
    ids = write(redis_client, keys[0], count)
    with httpx.stream("GET", f"{dashboard.url}/api/export", params={"format": "ndjson"}) as answer:
        assert "content-length" not in answer.headers  # sent as it is read, not built whole
        assert answer.headers["transfer-encoding"] == "chunked"
        got = [json.loads(line)["stream_id"] for line in answer.iter_lines() if line]
    assert got == ids


def test_a_bad_export_request_says_what_to_fix(dashboard: DashboardServer) -> None:
    answer = httpx.get(f"{dashboard.url}/api/export", params={"format": "xlsx"})
    assert (answer.status_code, answer.json()) == (400, {"error": "format='xlsx': use ndjson or csv"})
    answer = httpx.get(f"{dashboard.url}/api/export", params={"since": "yesterday-ish"})
    assert answer.status_code == 400 and "yesterday-ish" in answer.json()["error"]


@pytest.mark.browser
def test_the_pages_export_links_download_what_it_shows(
    page: Page, dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write_at(redis_client, keys[0], now_ms(), route("kept out"), fallback("exported"))
    open_live(page, dashboard, "?event_type=FALLBACK_TRIGGERED&since=1h")
    expect(page.locator("#export-csv")).to_have_attribute(
        "href", "/api/export?event_type=FALLBACK_TRIGGERED&since=1h&format=csv"
    )
    with page.expect_download() as download:
        page.locator("#export-ndjson").click()
    text = download.value.path().read_text(encoding="utf-8")
    assert [json.loads(line)["reason"] for line in text.splitlines()] == ["exported"]
