"""otel-collector.yaml, collector/docker-compose.yaml, Prometheus and Grafana files agree with each other.

Docker cannot run in the test environment, so these checks stand in for `docker compose up`:
every pipeline component is defined and used, current component names only, and every host
name and port one file points at is a service and port another file defines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sollol_otel.attributes import ERROR_TYPE, NAMESPACE
from sollol_otel.events import EVENT_NAME_PREFIX
from sollol_otel.receiver.metrics import ReceiverMetrics
from sollol_otel.receiver.records import Decoded, Signal
from sollol_otel.recording.exporters.decision_metrics import (
    BACKEND_ATTRIBUTE,
    DECISIONS,
    EVENT_TYPE_ATTRIBUTE,
    FALLBACKS,
    FROM_BACKEND_ATTRIBUTE,
)
from sollol_otel.redis.delivery import BridgeStats

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_DIR = ROOT / "collector"
#: Where each backend image listens inside the compose network (their documented defaults).
IMAGE_PORTS = {
    "jaeger": {4317, 4318, 16686},
    "loki": {3100},
    "prometheus": {9090},
    "grafana": {3000},
    "redis": {6379},
}
RETIRED_EXPORTERS = {"jaeger", "jaeger_thrift", "loki"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def otel() -> dict[str, Any]:
    config: dict[str, Any] = load(ROOT / "otel-collector.yaml")
    return config


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    config: dict[str, Any] = load(COLLECTOR_DIR / "docker-compose.yaml")
    return config


def kind(component: str) -> str:
    """`otlp_http/loki` → `otlp_http`: the component type before the optional name."""
    return component.split("/", 1)[0]


def host_port(endpoint: str, default_port: int | None = None) -> tuple[str, int]:
    parts = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    port = parts.port or default_port
    assert parts.hostname and port, endpoint
    return parts.hostname, port


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def service_ports(compose: dict[str, Any], otel: dict[str, Any]) -> dict[str, set[int]]:
    """Every port each compose service listens on inside the network."""
    ports = {name: set(IMAGE_PORTS.get(name, ())) for name in compose["services"]}
    for name, service in compose["services"].items():
        command = service.get("command", [])
        if "--port" in command:
            ports[name].add(int(flag(command, "--port")))
    collector_ports = {host_port(r["endpoint"])[1] for r in otel["receivers"]["otlp"]["protocols"].values()}
    collector_ports.add(host_port(otel["exporters"]["prometheus"]["endpoint"])[1])
    collector_ports.add(host_port(otel["extensions"]["health_check"]["endpoint"])[1])
    collector_ports.update(reader["pull"]["exporter"]["prometheus"]["port"] for reader in
                           otel["service"]["telemetry"]["metrics"]["readers"])  # fmt: skip
    ports["otel-collector"] = collector_ports
    return ports


def test_every_pipeline_component_is_defined(otel: dict[str, Any]) -> None:
    for pipeline in otel["service"]["pipelines"].values():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in otel[section], f"{section[:-1]} {component} is not defined"
    for extension in otel["service"]["extensions"]:
        assert extension in otel["extensions"]


def test_every_defined_component_is_used(otel: dict[str, Any]) -> None:
    for section in ("receivers", "processors", "exporters"):
        used = {c for pipeline in otel["service"]["pipelines"].values() for c in pipeline.get(section, [])}
        assert set(otel[section]) == used, section


def test_pipelines_start_with_memory_limiter_and_batch_before_export(otel: dict[str, Any]) -> None:
    for name, pipeline in otel["service"]["pipelines"].items():
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter", name
        assert kind(processors[-1]) == "batch", name


def test_only_current_exporters_are_used(otel: dict[str, Any]) -> None:
    assert not {kind(name) for name in otel["exporters"]} & RETIRED_EXPORTERS
    assert otel["exporters"]["otlp_http/loki"]["endpoint"].endswith("/otlp")


def test_traces_go_to_jaeger_logs_to_loki_metrics_to_prometheus(otel: dict[str, Any]) -> None:
    pipelines = otel["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/jaeger"]
    assert pipelines["logs"]["exporters"] == ["otlp_http/loki"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]


def test_receivers_bind_all_interfaces_in_the_container(otel: dict[str, Any]) -> None:
    endpoints = [p["endpoint"] for p in otel["receivers"]["otlp"]["protocols"].values()]
    endpoints.append(otel["extensions"]["health_check"]["endpoint"])
    assert all(endpoint.startswith("0.0.0.0:") for endpoint in endpoints)
    assert set(otel["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}


def test_routing_forwarding_sends_to_the_receiver(otel: dict[str, Any]) -> None:
    assert otel["service"]["pipelines"]["logs/routing"]["exporters"] == ["otlp_http/sollol"]


def test_routing_batches_leave_within_100_ms(otel: dict[str, Any]) -> None:
    timeout = otel["processors"]["batch/routing"]["timeout"]
    assert timeout.endswith("ms") and int(timeout[:-2]) <= 100


def test_exporters_point_at_compose_services_on_ports_they_listen_on(
    otel: dict[str, Any], compose: dict[str, Any]
) -> None:
    ports = service_ports(compose, otel)
    for name, exporter in otel["exporters"].items():
        if "endpoint" not in exporter or kind(name) == "prometheus":
            continue
        host, port = host_port(exporter["endpoint"])
        assert host in compose["services"], f"{name}: no service {host}"
        assert port in ports[host], f"{name}: {host} does not listen on {port}"


def test_compose_mounts_this_collector_config_where_the_collector_reads_it(compose: dict[str, Any]) -> None:
    service = compose["services"]["otel-collector"]
    config_path = flag([part for arg in service["command"] for part in arg.split("=", 1)], "--config")
    source, target, _ = service["volumes"][0].split(":")
    assert (COLLECTOR_DIR / source).resolve() == ROOT / "otel-collector.yaml"
    assert target == config_path
    assert service["image"].startswith("otel/opentelemetry-collector-contrib:")


def test_published_ports_are_loopback_only_and_match_container_ports(
    otel: dict[str, Any], compose: dict[str, Any]
) -> None:
    ports = service_ports(compose, otel)
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            address, container_port = mapping.split(":", 1)[0], mapping.rsplit(":", 1)[1]
            assert address == "127.0.0.1", f"{name} publishes {mapping} beyond this machine"
            assert int(container_port) in ports[name], f"{name} does not listen on {container_port}"


def test_sollol_services_reach_redis_by_its_service_name(compose: dict[str, Any]) -> None:
    for name in ("sollol-collector", "sollol-dashboard"):
        host, port = host_port(flag(compose["services"][name]["command"], "--redis-url"))
        assert host in compose["services"] and port in IMAGE_PORTS[host], name


def test_collector_token_reaches_both_sides(otel: dict[str, Any], compose: dict[str, Any]) -> None:
    assert "SOLLOL_COLLECTOR_TOKEN" in compose["services"]["sollol-collector"]["environment"]
    assert "SOLLOL_COLLECTOR_TOKEN" in compose["services"]["otel-collector"]["environment"]
    header = otel["exporters"]["otlp_http/sollol"]["headers"]["Authorization"]
    assert header == "Bearer ${env:SOLLOL_COLLECTOR_TOKEN:-}"


def test_dashboard_trace_links_open_the_published_jaeger_ui(compose: dict[str, Any]) -> None:
    template = compose["services"]["sollol-dashboard"]["environment"]["SOLLOL_TRACE_URL_TEMPLATE"]
    host, port = host_port(urlsplit(template).netloc)
    assert host == "localhost" and f"127.0.0.1:{port}:16686" in compose["services"]["jaeger"]["ports"]
    assert template.endswith("/trace/{trace_id}")


def test_prometheus_scrapes_services_on_ports_they_listen_on(
    otel: dict[str, Any], compose: dict[str, Any]
) -> None:
    ports = service_ports(compose, otel)
    scrape = load(COLLECTOR_DIR / "prometheus.yml")["scrape_configs"]
    targets = [target for job in scrape for group in job["static_configs"] for target in group["targets"]]
    assert "otel-collector:8889" in targets and any(t.startswith("sollol-collector:") for t in targets)
    for target in targets:
        host, port = host_port(target)
        assert host in compose["services"] and port in ports[host], target


def test_grafana_datasources_point_at_compose_services(otel: dict[str, Any], compose: dict[str, Any]) -> None:
    ports = service_ports(compose, otel)
    datasources = load(COLLECTOR_DIR / "grafana/provisioning/datasources/datasources.yaml")["datasources"]
    assert {d["type"] for d in datasources} == {"prometheus", "loki", "jaeger"}
    for datasource in datasources:
        host, port = host_port(datasource["url"])
        assert host in compose["services"] and port in ports[host], datasource["name"]


def test_grafana_mounts_match_the_provisioning_paths(compose: dict[str, Any]) -> None:
    volumes = dict(v.rsplit(":", 1)[0].split(":") for v in compose["services"]["grafana"]["volumes"])
    assert volumes["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = load(COLLECTOR_DIR / "grafana/provisioning/dashboards/dashboards.yaml")["providers"][0]
    assert volumes["./grafana/dashboards"] == provider["options"]["path"]
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (COLLECTOR_DIR / "grafana/dashboards" / Path(home).name).is_file()


def test_dashboard_panels_use_provisioned_datasources_and_cover_the_routing_views() -> None:
    dashboard = json.loads(
        (COLLECTOR_DIR / "grafana/dashboards/sollol-routing.json").read_text(encoding="utf-8")
    )
    datasources = load(COLLECTOR_DIR / "grafana/provisioning/datasources/datasources.yaml")["datasources"]
    uids = {d["uid"]: d["type"] for d in datasources}
    assert dashboard["title"] == "SOLLOL routing"
    for panel in dashboard["panels"]:
        for target in [panel, *panel["targets"]]:
            assert uids[target["datasource"]["uid"]] == target["datasource"]["type"], panel["title"]
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Decisions by backend", "Fallback rate", "Top reasons", "Routing log"} <= titles
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_loki_trace_links_go_to_the_jaeger_datasource() -> None:
    datasources = load(COLLECTOR_DIR / "grafana/provisioning/datasources/datasources.yaml")["datasources"]
    loki = next(d for d in datasources if d["type"] == "loki")
    [link] = loki["jsonData"]["derivedFields"]
    assert link["matcherType"] == "label" and link["matcherRegex"] == "trace_id"
    assert link["datasourceUid"] in {d["uid"] for d in datasources if d["type"] == "jaeger"}


def dashboard_expressions(datasource_type: str) -> str:
    dashboard = json.loads(
        (COLLECTOR_DIR / "grafana/dashboards/sollol-routing.json").read_text(encoding="utf-8")
    )
    return " ".join(
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel["targets"]
        if target["datasource"]["type"] == datasource_type
    )


def prometheus_name(otel_name: str) -> str:
    return otel_name.replace(".", "_")


def test_dashboard_queries_use_the_metric_and_label_names_the_package_exports() -> None:
    expressions = dashboard_expressions("prometheus")
    for counter in (DECISIONS, FALLBACKS):
        assert f"{prometheus_name(counter)}_total" in expressions
    for label in (EVENT_TYPE_ATTRIBUTE, BACKEND_ATTRIBUTE, FROM_BACKEND_ATTRIBUTE, ERROR_TYPE):
        assert prometheus_name(label) in expressions
    receiver_metrics = ReceiverMetrics(lambda: BridgeStats(0, 0, 0, 0, True), lambda: 0)
    receiver_metrics.accepted(Signal.LOGS, Decoded(), 0)
    exported = receiver_metrics.exposition().decode()
    for name in re.findall(r"sollol_receiver_\w+", expressions):
        assert f"\n{name}{{" in exported or f"\n{name} " in exported


def test_loki_queries_select_routing_events_by_the_attribute_the_collector_adds(otel: dict[str, Any]) -> None:
    expressions = dashboard_expressions("loki")
    statements = otel["processors"]["transform/event_name"]["log_statements"]
    assert 'set(log.attributes["event.name"], log.event_name) where log.event_name != ""' in statements
    assert f'event_name=~"{EVENT_NAME_PREFIX.replace(".", "[.]")}.+"' in expressions
    assert prometheus_name(NAMESPACE + "reason") in expressions
