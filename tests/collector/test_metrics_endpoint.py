"""SOLLOL_METRICS_PORT: a router without a Collector is scraped directly, one port per process."""

from __future__ import annotations

import os
import re
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

import sollol_otel
from sollol_otel.recording import metrics_endpoint
from sollol_otel.settings import SettingsError

from .conftest import scrape


def samples(port: int, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The values of metric `name` on the endpoint, by their labels (OTel's scope labels left out)."""
    found = {}
    for family in text_string_to_metric_families(scrape(port)):
        for sample in family.samples:
            if sample.name == name:
                labels = {k: v for k, v in sample.labels.items() if not k.startswith("otel_scope_")}
                found[frozenset(labels.items())] = sample.value
    return found


def record_decisions(backend: str) -> None:
    logger = sollol_otel.get_routing_logger()
    logger.log_route_decision("llama3.2:3b", backend, "sufficient_resources")
    logger.log_fallback("llama3.2:3b", backend, "rpc", "ollama_error: Out of memory")
    logger.log_ollama_node_selected("10.0.0.7:11434", "lowest_latency (12ms)", "llama3.2:3b")
    logger.log_rpc_backend_selected("10.0.0.9", 50052, "round_robin")
    assert sollol_otel.force_flush(5.0)


def routed(port: int) -> dict[str, float]:
    """ROUTE_DECISION counts by backend."""
    decisions = samples(port, "sollol_routing_decisions_total")
    return {
        labels["sollol_backend"]: value
        for labels, value in ((dict(key), value) for key, value in decisions.items())
        if labels["sollol_event_type"] == "ROUTE_DECISION"
    }


def test_decisions_fallbacks_and_the_bridge_ledger_are_served(metrics_port: int) -> None:
    sollol_otel.configure()
    record_decisions("ollama")
    assert routed(metrics_port) == {"ollama": 1}
    fallbacks = samples(metrics_port, "sollol_routing_fallbacks_total")
    assert list(fallbacks.values()) == [1]
    assert samples(metrics_port, "sollol_otel_bridge_exported_total") == {frozenset(): 4}


def test_each_chosen_node_is_counted_by_backend_address_and_port(metrics_port: int) -> None:
    sollol_otel.configure()
    record_decisions("ollama")
    nodes = samples(metrics_port, "sollol_routing_node_selections_total")
    assert {tuple(sorted(labels)): value for labels, value in nodes.items()} == {
        (("server_address", "10.0.0.7"), ("server_port", "11434"), ("sollol_backend", "ollama")): 1,
        (("server_address", "10.0.0.9"), ("server_port", "50052"), ("sollol_backend", "rpc")): 1,
    }


def test_configuring_again_keeps_the_endpoint_and_its_counts(metrics_port: int) -> None:
    sollol_otel.configure()
    record_decisions("ollama")
    sollol_otel.configure()
    record_decisions("ollama")
    assert routed(metrics_port) == {"ollama": 2}


def test_without_a_port_nothing_is_served(keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLLOL_METRICS_PORT", raising=False)
    try:
        sollol_otel.configure()
        assert metrics_endpoint.address() is None
        assert metrics_endpoint.serve(None, lambda _: None) is None
    finally:
        sollol_otel.shutdown(timeout=2.0)


def test_turning_recording_off_closes_the_port(metrics_port: int) -> None:
    sollol_otel.configure()
    sollol_otel.configure(enabled=False)
    with pytest.raises(OSError):
        scrape(metrics_port)


def test_shutdown_closes_the_port(metrics_port: int) -> None:
    sollol_otel.configure()
    sollol_otel.shutdown(timeout=2.0)
    with pytest.raises(OSError):
        scrape(metrics_port)


def test_a_port_that_is_not_one_fails_configure_naming_the_variable(
    metrics_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sollol_otel.configure()
    monkeypatch.setenv("SOLLOL_METRICS_PORT", "metrics")
    with pytest.raises(SettingsError, match="SOLLOL_METRICS_PORT='metrics' is not a port number"):
        sollol_otel.configure()
    record_decisions("ollama")  # the running pipeline and endpoint are untouched
    assert routed(metrics_port) == {"ollama": 1}


def test_an_address_it_cannot_listen_on_is_logged_and_recording_goes_on(
    metrics_port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SOLLOL_METRICS_HOST", "203.0.113.1")  # TEST-NET-3: no interface here has it
    sollol_otel.configure()
    record_decisions("ollama")
    assert sollol_otel.bridge_stats().exported == 4
    assert f"cannot serve routing metrics on 203.0.113.1:{metrics_port}" in caplog.text


def test_a_forked_worker_serves_its_own_decisions_on_the_next_free_port(metrics_port: int) -> None:
    """gunicorn --preload: the master configured, each worker is scraped on a port of its own."""
    sollol_otel.configure()
    record_decisions("parent")
    ready_read, ready_write = os.pipe()
    done_read, done_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never return into pytest
        os.close(ready_read)
        os.close(done_write)
        try:
            record_decisions("worker")
            endpoint = metrics_endpoint.serve(metrics_endpoint.address(), lambda _: None)
            answer = str(endpoint.port if endpoint else None)
        except BaseException as error:  # reported to the parent, which fails the test
            answer = repr(error)
        os.write(ready_write, answer.encode())
        os.close(ready_write)
        os.read(done_read, 1)  # serve until the parent has scraped
        os._exit(0)
    os.close(ready_write)
    os.close(done_read)
    try:
        answer = os.read(ready_read, 200).decode()
        assert re.fullmatch(r"\d+", answer), answer
        worker_port = int(answer)
        assert worker_port > metrics_port
        assert routed(worker_port) == {"worker": 1}  # nothing of the parent's counts
        assert routed(metrics_port) == {"parent": 1}
    finally:
        os.close(done_write)
        os.close(ready_read)
        os.waitpid(pid, 0)


def test_with_no_free_port_recording_goes_on_and_says_so(
    metrics_port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(metrics_endpoint, "PORTS_TRIED", 1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", metrics_port))
        taken.listen()
        sollol_otel.configure()
    record_decisions("ollama")
    assert sollol_otel.bridge_stats().exported == 4
    assert f"no free port for routing metrics on 127.0.0.1 from {metrics_port}" in caplog.text
