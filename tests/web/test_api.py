"""The JSON endpoints: history paging and filters, stats, config, health."""

from __future__ import annotations

import httpx
import redis
from redis_servers import free_port
from web.conftest import ServerFactory
from web.dashboard_harness import DashboardServer, reasons, write

from sollol_otel.settings import Settings


def test_history_pages_back_with_before(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 25)
    newest = httpx.get(f"{dashboard.url}/api/routing_events", params={"limit": 10}).json()
    older = httpx.get(
        f"{dashboard.url}/api/routing_events", params={"limit": 10, "before": newest["next_before"]}
    ).json()
    assert reasons(newest["events"]) == [f"sufficient_resources #{n}" for n in range(15, 25)]
    assert reasons(older["events"]) == [f"sufficient_resources #{n}" for n in range(5, 15)]


def test_history_filters_scan_past_non_matching_events(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 3, instance_id="alpha_1_aaaa")
    write(redis_client, keys[0], 2500, start=3)
    page = httpx.get(f"{dashboard.url}/api/routing_events", params={"instance": "alpha"}, timeout=30).json()
    assert reasons(page["events"]) == [f"sufficient_resources #{n}" for n in range(3)]
    assert page["next_before"] is None


def test_history_rejects_a_bad_parameter_with_a_clear_error(dashboard: DashboardServer) -> None:
    response = httpx.get(f"{dashboard.url}/api/routing_events", params={"before": "yesterday"})
    assert response.status_code == 400
    assert "before" in response.json()["error"]


def test_stats_count_the_window_by_type_backend_model_and_instance(
    dashboard: DashboardServer, redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    write(redis_client, keys[0], 3)
    write(redis_client, keys[0], 2, event_type="FALLBACK_TRIGGERED", backend="rpc", model="m2")
    redis_client.xadd(keys[0], {"event": b"not json"})
    stats = httpx.get(f"{dashboard.url}/api/stats").json()
    assert stats["by_event_type"] == {"ROUTE_DECISION": 3, "FALLBACK_TRIGGERED": 2}
    assert stats["by_backend"] == {"ollama": 3, "rpc": 2}
    assert stats["by_model"] == {"llama3.2:3b": 3, "m2": 2}
    assert stats["by_instance"] == {"workstation_42_a1b2c3d4": 5}
    assert (stats["events"], stats["skipped"], stats["rate_per_second"]["10s"]) == (5, 1, 0.5)


def test_config_delivers_the_trace_url_template(start_dashboard: ServerFactory) -> None:
    server = start_dashboard(trace_url_template="http://localhost:16686/trace/{trace_id}")
    config = httpx.get(f"{server.url}/api/config").json()
    assert config["trace_url_template"] == "http://localhost:16686/trace/{trace_id}"


def test_healthz_reports_redis_up(dashboard: DashboardServer) -> None:
    response = httpx.get(f"{dashboard.url}/healthz")
    assert (response.status_code, response.json()["redis"]) == (200, "up")


def test_healthz_reports_redis_down_without_showing_the_password(
    start_dashboard: ServerFactory, keys: tuple[str, str]
) -> None:
    settings = Settings.from_env().with_overrides(redis_url=f"redis://:hunter2@127.0.0.1:{free_port()}")
    server = start_dashboard(settings)
    response = httpx.get(f"{server.url}/healthz")
    assert (response.status_code, response.json()["redis"]) == (503, "down")
    assert "hunter2" not in response.text
    assert ":***@" in response.json()["redis_url"]
