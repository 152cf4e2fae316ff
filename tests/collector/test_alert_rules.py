"""collector/alerts.yml: valid for promtool, loaded by the compose file's Prometheus, and every alert
unit-tested (tests/collector/alerts_test.yml) with `promtool test rules`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from .prometheus_server import RULES, binary

HERE = Path(__file__).resolve().parent
COLLECTOR = RULES.parent


def promtool(*args: str) -> str:
    """promtool's output; the test fails with it when promtool does."""
    done = subprocess.run(
        [binary("promtool"), *args], check=False, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_rules_pass_promtool_check() -> None:
    assert "SUCCESS" in promtool("check", "rules", str(RULES))


def test_the_compose_prometheus_loads_the_rules() -> None:
    assert "1 rule files found" in promtool("check", "config", str(COLLECTOR / "prometheus.yml"))
    [rule_file] = load(COLLECTOR / "prometheus.yml")["rule_files"]
    volumes = load(COLLECTOR / "docker-compose.yaml")["services"]["prometheus"]["volumes"]
    assert f"./{RULES.name}:/etc/prometheus/{rule_file}:ro" in volumes


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    alerts = {rule["alert"] for group in load(RULES)["groups"] for rule in group["rules"] if "alert" in rule}
    tested = {
        case["alertname"]
        for test in load(HERE / "alerts_test.yml")["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert alerts == tested


def test_the_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", str(HERE / "alerts_test.yml"))
