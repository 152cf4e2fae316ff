"""An opt-in Prometheus endpoint in the router process, for routers scraped without a Collector.

`SOLLOL_METRICS_PORT` turns it on (`SOLLOL_METRICS_HOST`, loopback by default, says where it
listens). It serves the decision metrics and the bridge's delivery ledger through the OTel SDK's
Prometheus reader, on a MeterProvider of its own (as the receiver's /metrics is): it works
whatever meter provider the application has, and counts only this process's decisions.

Forked workers (gunicorn) cannot all bind one port: each process serves the first free port
from `SOLLOL_METRICS_PORT` upward, within `PORTS_TRIED`, and logs which. A forked child drops
its copy of the parent's server and counts and serves afresh, so N workers (the first of them
with `--preload`: the master) listen on port, port+1, ... port+N-1, and Prometheus scrapes that
range. The endpoint lives from the first `configure()` that asks for it to `shutdown()`; a
`configure()` with the same host and port keeps it (and its counts).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from sollol_otel.identity import renew_after_fork
from sollol_otel.recording.exporters.decision_metrics import DecisionMetrics
from sollol_otel.settings import METRICS_HOST, METRICS_PORT

_log = logging.getLogger(__name__)

#: Ports tried from SOLLOL_METRICS_PORT upward: room for a gunicorn master and its workers.
PORTS_TRIED = 64


class MetricsEndpoint:
    """This process's /metrics: its own meter provider, registry and HTTP server."""

    def __init__(self, host: str, base_port: int, observe: Callable[[MeterProvider], None]) -> None:
        self.host = host
        self.base_port = base_port
        self._observe = observe
        self._server: WSGIServer | None = None
        self.port: int | None = None
        self._start()
        renew_after_fork(self._start_afresh)

    def instruments(self) -> DecisionMetrics:
        """The decision instruments of this process (a forked child gets new ones)."""
        return self._metrics

    def _start(self) -> None:
        # Imported here: most routers never turn the endpoint on (~15 ms less at import).
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=False)
        reader = PrometheusMetricReader(disable_target_info=True, registry=registry)
        self._provider = MeterProvider(
            metric_readers=[reader], resource=Resource.get_empty(), shutdown_on_exit=False
        )
        self._metrics = DecisionMetrics(self._provider)
        self._observe(self._provider)
        for port in range(self.base_port, min(self.base_port + PORTS_TRIED, 65536)):
            try:
                self._server, _ = start_http_server(port, self.host, registry)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    continue
                _log.warning(
                    "sollol-otel: cannot serve routing metrics on %s:%d (%s); recording goes on",
                    self.host, port, error,
                )  # fmt: skip
                return
            self.port = port
            _log.info("sollol-otel: routing metrics for Prometheus on http://%s:%d/metrics", self.host, port)
            return
        _log.warning(
            "sollol-otel: no free port for routing metrics on %s from %d to %d (SOLLOL_METRICS_PORT);"
            " this process is not scraped, recording goes on",
            self.host, self.base_port, self.base_port + PORTS_TRIED - 1,
        )  # fmt: skip

    def _start_afresh(self) -> None:
        """In a forked child: the parent's server thread is not here and its socket is the parent's."""
        if self._server is not None:
            self._server.server_close()
        self._server, self.port = None, None
        self._start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server, self.port = None, None
        self._provider.shutdown()


_endpoint: MetricsEndpoint | None = None


def address() -> tuple[str, int] | None:
    """Where the environment asks for the endpoint (host, first port), or None; read before
    anything changes, so a bad SOLLOL_METRICS_PORT fails `configure()` with nothing undone."""
    port = METRICS_PORT.read()
    return None if port is None else (METRICS_HOST.read(), port)


def serve(wanted: tuple[str, int] | None, observe: Callable[[MeterProvider], None]) -> MetricsEndpoint | None:
    """The endpoint at `wanted`: started, kept, moved to a new address, or stopped (None).

    `observe` registers the bridge's instruments on the endpoint's meter provider.
    """
    global _endpoint
    if _endpoint is not None and wanted != (_endpoint.host, _endpoint.base_port):
        stop()
    if wanted is not None and _endpoint is None:
        _endpoint = MetricsEndpoint(*wanted, observe)
    return _endpoint


def stop() -> None:
    global _endpoint
    if _endpoint is not None:
        _endpoint.close()
        _endpoint = None
