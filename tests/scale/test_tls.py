"""TLS with a private CA and an ACL user, as managed Redis services run it: every part, by URL alone.

`rediss://sollol:<password>@localhost:<tls port>/0?ssl_ca_certs=<ca.crt>`; the user may touch
only `sollol:*` keys and channels and run the commands sollol-otel needs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
from cli.tail_cli import Running, json_lines
from scale.deployments import SLOW, TlsRedis, requires_debian_redis
from scale.parts import Receiver, feed_reasons, reasons, record, stream_reasons
from web.dashboard_harness import DashboardServer, ws_feed

import sollol_otel

pytestmark = requires_debian_redis


def test_recorded_events_arrive_over_tls_as_the_acl_user(
    tls: TlsRedis, names: tuple[str, str], recording: Callable[..., sollol_otel.RoutingLogger]
) -> None:
    record(recording(redis_url=tls.url), range(5))
    assert sollol_otel.force_flush(10)
    assert stream_reasons(tls.admin(), names[0]) == reasons(range(5))


def test_tail_and_stats_read_over_tls_and_never_show_the_password(
    tls: TlsRedis,
    names: tuple[str, str],
    recording: Callable[..., sollol_otel.RoutingLogger],
    command: Callable[..., Running],
) -> None:
    record(recording(redis_url=tls.url), range(5))
    assert sollol_otel.force_flush(10)
    tail = command(tls.url, "tail", "--history", "5", "-o", "json")
    stats = command(tls.url, "stats")
    assert tail.exit_code(30) == 0 and stats.exit_code(30) == 0
    assert [e["reason"] for e in json_lines("\n".join(tail.stdout))] == reasons(range(5))
    assert any("Redis memory" in line and "per event" in line for line in stats.stdout)
    for output in (tail.stdout, tail.stderr, stats.stdout, stats.stderr):
        assert not any(tls.PASSWORD in line for line in output)


async def test_receiver_and_dashboard_work_over_tls_and_the_page_gets_no_password(
    tls: TlsRedis,
    names: tuple[str, str],
    dashboard: Callable[[str], DashboardServer],
    receiver: Callable[[str], Receiver],
) -> None:
    server = dashboard(tls.url)
    otlp = await asyncio.to_thread(receiver, tls.url)
    async with ws_feed(server, "batch=1") as feed:
        await feed.caught_up()
        await asyncio.to_thread(otlp.send, range(5))
        messages = await feed.until(lambda ms: len(feed_reasons(ms)) >= 5, timeout=SLOW)
    assert feed_reasons(messages) == reasons(range(5))
    async with httpx.AsyncClient(base_url=server.url) as client:
        health, config = await client.get("/healthz"), await client.get("/api/config")
    assert health.json()["redis"] == "up"
    assert tls.PASSWORD not in json.dumps([health.json(), config.json()])


def test_a_client_without_the_ca_is_refused_and_says_so(
    tls: TlsRedis, command: Callable[..., Running]
) -> None:
    stats = command(tls.url.partition("?")[0], "stats")  # no ssl_ca_certs: the private CA is not trusted
    assert stats.exit_code(30) == 1
    assert any("certificate verify failed" in line for line in stats.stderr)
