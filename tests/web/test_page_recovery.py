"""A page opened while Redis is down says which Redis (never its password) and recovers by itself
when Redis returns, in real headless Chromium against a redis-server this test stops and starts."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from playwright.sync_api import Browser, Page, expect
from redis_servers import RedisServer
from web.browser import page_of, rows
from web.conftest import ServerFactory
from web.dashboard_harness import write

from sollol_otel.settings import Settings

pytestmark = pytest.mark.browser

PASSWORD = "s3cret-pw"


@pytest.fixture
def guarded_redis() -> Iterator[RedisServer]:
    """A private Redis that wants a password, stopped and started by the test."""
    server = RedisServer(args=["--requirepass", PASSWORD]).start()
    yield server
    server.close()


def back_and_live(page: Page, server: RedisServer, url: str, stream: str, count: int) -> None:
    """Redis starts again: the page goes live by itself and shows what is written then, in order."""
    server.start()
    expect(page.locator("#status")).to_have_text("live · WebSocket", timeout=20_000)
    client = redis.Redis.from_url(url)
    write(client, stream, count)
    client.close()
    expect(page.locator("#events li[data-id]")).to_have_count(count)
    assert [text.rsplit("#", 1)[1] for text in rows(page)] == [str(n) for n in range(count)]


def test_a_page_opened_while_redis_is_down_names_it_and_goes_live_when_it_returns(
    browser: Browser, start_dashboard: ServerFactory, guarded_redis: RedisServer, keys: tuple[str, str]
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{guarded_redis.port}"
    shown = f"redis://:***@127.0.0.1:{guarded_redis.port}"
    guarded_redis.stop()
    server = start_dashboard(Settings.from_env().with_overrides(redis_url=url))
    answer = httpx.get(f"{server.url}/api/stats")
    assert answer.status_code == 503
    assert answer.json() == {"error": f"Redis at {shown} unavailable (ConnectionError)"}
    with page_of(browser, allow_errors=True) as page:  # the browser logs each 503 as an error
        page.goto(server.url)
        status = page.locator("#status")
        expect(status).to_contain_text(f"Redis at {shown} unavailable", timeout=10_000)
        assert PASSWORD not in status.inner_text()
        back_and_live(page, guarded_redis, url, keys[0], 3)


# Inside a full suite its live WebSocket was once dropped when Redis stopped (the page then says only
# "disconnected"); never alone. Rerun until the cause is found (closing note of issue 19).
@pytest.mark.flaky(reruns=2)
def test_a_live_page_names_the_redis_it_lost_and_carries_on_when_it_returns(
    browser: Browser, start_dashboard: ServerFactory, guarded_redis: RedisServer, keys: tuple[str, str]
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{guarded_redis.port}"
    server = start_dashboard(Settings.from_env().with_overrides(redis_url=url))
    with page_of(browser, allow_errors=True) as page:  # each 503 while Redis is away
        page.goto(server.url)
        status = page.locator("#status")
        expect(status).to_have_text("live · WebSocket")
        guarded_redis.stop()
        expect(status).to_contain_text(f"Redis at redis://:***@127.0.0.1:{guarded_redis.port} unavailable: ")
        assert PASSWORD not in status.inner_text()
        back_and_live(page, guarded_redis, url, keys[0], 2)
