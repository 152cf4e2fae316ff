"""A real Prometheus scrapes a router's own endpoint and the OTLP receiver: the Grafana dashboard's
queries return data, and the alert rules load, evaluate and fire on what the processes expose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from server_process import ServerProcess, server_process
from waiting import eventually

import sollol_otel

from .prometheus_server import Prometheus
from .test_metrics_endpoint import record_decisions

ROOT = Path(__file__).resolve().parents[2]
#: Grafana's variables in the dashboard's queries, as Grafana fills them for a 5-minute view.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "5m"}
#: A wait for a few scrapes and rule evaluations (1 s each) on a loaded machine.
SCRAPES = 60.0


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every Prometheus query on the dashboard, variables filled in."""
    queries = []
    for path in sorted((ROOT / "collector/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["type"] != "prometheus":
                    continue
                expression = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expression = expression.replace(variable, value)
                assert "$" not in expression, f"{panel['title']}: a variable this test does not fill"
                queries.append((panel["title"], expression))
    return queries


@pytest.fixture
def receiver(keys: tuple[str, str], redis_url: str) -> Iterator[ServerProcess]:
    with server_process("collector", "--redis-url", redis_url) as running:
        yield running


def send_logs(url: str, *event_names: str) -> None:
    """Routing log records to the receiver through the official OTLP/HTTP log exporter."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "go-router"}), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs")))
    logger = provider.get_logger("go-router")
    for name in event_names:
        attributes = {"gen_ai.request.model": "llama3.2:3b", "sollol.backend": "ollama", "sollol.reason": "r"}
        logger.emit(LogRecord(event_name=name, body="decision", attributes=attributes))
    provider.shutdown()


def scraped(prometheus: Prometheus, job: str, address: str) -> None:
    prometheus.scrape(job, address)
    eventually(lambda: prometheus.up(job), timeout=SCRAPES, interval=0.5, what=f"Prometheus to scrape {job}")


def test_every_dashboard_query_returns_data_from_a_router_and_the_receiver(
    prometheus: Prometheus, metrics_port: int, receiver: ServerProcess
) -> None:
    sollol_otel.configure()
    record_decisions("ollama")
    send_logs(receiver.url, "sollol.routing.route_decision")
    scraped(prometheus, "sollol-routers", f"127.0.0.1:{metrics_port}")
    scraped(prometheus, "sollol-collector", f"127.0.0.1:{receiver.port}")
    queries = dashboard_queries()
    assert len(queries) >= 6
    for title, expression in queries:
        eventually(
            lambda query=expression: prometheus.query(query),
            timeout=SCRAPES,
            interval=0.5,
            what=f"data for {title!r}",
        )


def test_every_alert_rule_loads_and_evaluates_on_this_prometheus(prometheus: Prometheus) -> None:
    def evaluated() -> list[dict[str, str]]:
        rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
        return rules if rules and all(rule["health"] == "ok" for rule in rules) else []

    rules = eventually(evaluated, timeout=SCRAPES, interval=0.5, what="every rule evaluated without error")
    assert {rule["name"] for rule in rules} >= {"SollolBridgeDropping", "SollolNodeNoLongerChosen"}


def firing(prometheus: Prometheus, alert: str, **labels: str) -> bool:
    return any(
        found["labels"]["alertname"] == alert
        and found["state"] == "firing"
        and labels.items() <= found["labels"].items()
        for found in prometheus.api("alerts")["alerts"]
    )


def test_a_router_dropping_events_fires_the_bridge_alert(prometheus: Prometheus, metrics_port: int) -> None:
    sollol_otel.configure(redis_url="redis://127.0.0.1:1", backlog=1)  # nothing listens on port 1
    logger = sollol_otel.get_routing_logger()
    for _ in range(5):
        logger.log_route_decision("llama3.2:3b", "ollama", "r")
    eventually(lambda: sollol_otel.bridge_stats().dropped, what="the backlog to overflow")
    address = f"127.0.0.1:{metrics_port}"
    scraped(prometheus, "sollol-routers", address)
    eventually(
        lambda: firing(prometheus, "SollolBridgeDropping", instance=address, reason="backlog full"),
        timeout=SCRAPES,
        interval=0.5,
        what="SollolBridgeDropping to fire",
    )


def test_a_receiver_rejecting_records_fires_the_receiver_alert(
    prometheus: Prometheus, receiver: ServerProcess
) -> None:
    send_logs(receiver.url, "sollol.route_decision")  # in the namespace, not a routing event: rejected
    address = f"127.0.0.1:{receiver.port}"
    scraped(prometheus, "sollol-collector", address)
    eventually(
        lambda: firing(prometheus, "SollolReceiverRejecting", instance=address),
        timeout=SCRAPES,
        interval=0.5,
        what="SollolReceiverRejecting to fire",
    )
