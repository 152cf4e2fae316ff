"""A real Prometheus (Debian's `prometheus` package, 2.42) on a free port, with a temp config and
storage: tests add scrape targets at run time (file-based discovery) and query it over HTTP."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis_servers import free_port
from server_process import end
from waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "collector/alerts.yml"
#: Short enough that rate() over a minute has samples within seconds of a target appearing.
SCRAPE_INTERVAL = "1s"


def binary(name: str) -> str:
    """`prometheus` or `promtool`; the test skips, saying how to get them, when they are missing."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} not installed: `apt-get install prometheus` (scripts/test.sh does it where it can)"
        )
    return path


class Prometheus:
    """The running server: its URL, the targets it scrapes, and its HTTP API."""

    def __init__(self, url: str, targets: Path) -> None:
        self.url = url
        self._targets = targets

    def scrape(self, job: str, *addresses: str) -> None:
        """Scrape `addresses` (host:port) as `job` from now on, besides the targets already given."""
        groups = json.loads(self._targets.read_text())
        groups.append({"targets": list(addresses), "labels": {"job": job}})
        staged = self._targets.with_suffix(".tmp")
        staged.write_text(json.dumps(groups))
        staged.replace(self._targets)  # Prometheus never reads a half-written file

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) `expression` evaluates to now."""
        data = self.api("query", query=expression)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [data]
        return result

    def up(self, job: str) -> bool:
        return any(sample["value"][1] == "1" for sample in self.query(f'up{{job="{job}"}}'))


@contextmanager
def running_prometheus(directory: Path) -> Iterator[Prometheus]:
    """Prometheus on a free loopback port, loading collector/alerts.yml, stopped after the block."""
    executable = binary("prometheus")
    targets = directory / "targets.json"
    targets.write_text("[]")
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "discovered", "honor_labels": True, "file_sd_configs": [{"files": [str(targets)]}]}
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            executable,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
    )
    server = Prometheus(f"http://127.0.0.1:{port}", targets)

    def ready() -> bool:
        assert process.poll() is None, (directory / "prometheus.log").read_text()
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    try:
        eventually(ready, timeout=30, interval=0.1, what="Prometheus to be ready")
        yield server
    finally:
        end(process, signal.SIGTERM)
        log.close()
