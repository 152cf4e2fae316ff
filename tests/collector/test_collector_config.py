"""otel-collector.yaml checked as the Collector would check it, as far as that is possible here.

The Collector binary (otelcol-contrib) cannot be installed on these machines: no Debian or PyPI
package ships it and the test machines have no Docker. So the checks the Collector makes at
start-up are made here from its documentation instead: every component type is one the pinned
contrib release builds in (its manifest, distributions/otelcol-contrib in
opentelemetry-collector-releases), none is a deprecated alias, every pipeline names defined
components, and the OTTL conditions and statements use only documented paths (with the
context prefixes `log_conditions` and flat `log_statements` infer contexts from) and functions.
The routing filter's conditions are then evaluated on sample records: OTTL's `not`, `and`,
`==` and string literals are Python's, so the conditions run as written with IsMatch as
documented (an unanchored RE2 search, false on a missing value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from sollol_otel.recording.pipeline import SCOPE

ROOT = Path(__file__).resolve().parents[2]
#: The first release with everything the config uses: `otlp_grpc`/`otlp_http` (0.144.0) and the
#: filter processor's `log_conditions` (0.146.0).
OLDEST_SUPPORTED = (0, 146, 0)
#: Component types of the contrib distribution (0.146.0 onwards) that this config may use, by
#: section, with the Go module each comes from. The manifest has many more; these are checked.
RELEASE_COMPONENTS = {
    "receivers": {"otlp"},  # collector/receiver/otlpreceiver (one receiver, gRPC and HTTP)
    "processors": {
        "batch",  # collector/processor/batchprocessor
        "memory_limiter",  # collector/processor/memorylimiterprocessor
        "filter",  # contrib/processor/filterprocessor
        "transform",  # contrib/processor/transformprocessor
    },
    "exporters": {
        "otlp_grpc",  # collector/exporter/otlpexporter, renamed from `otlp` in 0.144.0
        "otlp_http",  # collector/exporter/otlphttpexporter, renamed from `otlphttp` in 0.144.0
        "prometheus",  # contrib/exporter/prometheusexporter
        "debug",  # collector/exporter/debugexporter
    },
    "extensions": {"health_check"},  # contrib/extension/healthcheckextension
}
#: Names the pinned release still accepts but logs as deprecated at start-up.
DEPRECATED = {"exporters": {"otlp", "otlphttp"}}
#: Settings each processor type documents; anything else fails the Collector's config decoding.
PROCESSOR_KEYS = {
    "batch": {
        "send_batch_size", "send_batch_max_size", "timeout", "metadata_keys", "metadata_cardinality_limit",
    },
    "memory_limiter": {
        "check_interval", "limit_mib", "spike_limit_mib", "limit_percentage", "spike_limit_percentage",
    },
    "filter": {"error_mode", "trace_conditions", "metric_conditions", "log_conditions", "profile_conditions"},
    "transform": {"error_mode", "trace_statements", "metric_statements", "log_statements", "flatten_data"},
}  # fmt: skip
#: OTTL paths (with their context prefix) the log, scope and resource contexts document.
OTTL_PATHS = {
    "log.event_name", "log.attributes", "log.body", "log.severity_number", "log.severity_text",
    "log.time_unix_nano", "log.trace_id", "log.span_id", "scope.name", "scope.version",
    "resource.attributes",
}  # fmt: skip
#: OTTL functions the config may call: converters (usable in conditions) and editors (statements).
OTTL_CONVERTERS = {"IsMatch", "IsString", "Concat", "ToLowerCase"}
OTTL_EDITORS = {"set", "delete_key"}
OTTL_KEYWORDS = {"not", "and", "or", "where", "nil", "true", "false"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_PATH = re.compile(r"\b[a-z_]+(?:\.[a-z_]+)+\b")


@pytest.fixture(scope="module")
def otel() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "otel-collector.yaml").read_text(encoding="utf-8"))
    return config


def kind(component: str) -> str:
    return component.split("/", 1)[0]


def pinned_release() -> tuple[int, ...]:
    compose = yaml.safe_load((ROOT / "collector/docker-compose.yaml").read_text(encoding="utf-8"))
    image = compose["services"]["otel-collector"]["image"]
    name, version = image.rsplit(":", 1)
    assert name == "otel/opentelemetry-collector-contrib", image
    return tuple(int(part) for part in version.split("."))


def without_strings(expression: str) -> str:
    return _STRING.sub('""', expression)


def test_compose_pins_a_release_that_has_every_name_the_config_uses() -> None:
    assert pinned_release() >= OLDEST_SUPPORTED


def test_every_component_type_is_built_into_the_pinned_release_and_not_deprecated(
    otel: dict[str, Any],
) -> None:
    for section, known in RELEASE_COMPONENTS.items():
        for component in otel.get(section) or {}:
            assert kind(component) in known, f"{section}: {component} is not in otelcol-contrib"
            assert kind(component) not in DEPRECATED.get(section, set()), f"{component} is deprecated"


def test_every_pipeline_names_defined_components_of_its_signal(otel: dict[str, Any]) -> None:
    pipelines = otel["service"]["pipelines"]
    for name, pipeline in pipelines.items():
        assert kind(name) in {"traces", "metrics", "logs"}, name
        assert pipeline["receivers"] and pipeline["exporters"], name
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in (otel.get(section) or {}), f"{name}: {component} is not defined"
    for extension in otel["service"]["extensions"]:
        assert extension in otel["extensions"]


def test_processors_use_only_documented_settings(otel: dict[str, Any]) -> None:
    for name, settings in otel["processors"].items():
        unknown = set(settings or {}) - PROCESSOR_KEYS[kind(name)]
        assert not unknown, f"{name}: {sorted(unknown)}"


def ottl_expressions(otel: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every OTTL condition and statement, as (processor, setting, expression)."""
    found = []
    for name, settings in otel["processors"].items():
        for key in ("log_conditions", "log_statements", "trace_conditions", "trace_statements"):
            for expression in (settings or {}).get(key, []):
                assert isinstance(expression, str), f"{name}.{key}: the flat form takes strings"
                found.append((name, key, expression))
    return found


def test_ottl_uses_documented_paths_with_their_context_prefix(otel: dict[str, Any]) -> None:
    expressions = ottl_expressions(otel)
    assert expressions
    for name, _, expression in expressions:
        for path in _PATH.findall(without_strings(expression)):
            assert path in OTTL_PATHS, f"{name}: {path} in {expression}"


def test_ottl_calls_documented_functions_only(otel: dict[str, Any]) -> None:
    for name, key, expression in ottl_expressions(otel):
        calls = _CALL.findall(without_strings(expression))
        editors = [call for call in calls if call in OTTL_EDITORS]
        if key.endswith("conditions"):
            assert not editors, f"{name}: a condition cannot edit: {expression}"
        else:
            assert editors == calls[:1], f"{name}: a statement is one editor call: {expression}"
        assert set(calls) <= OTTL_CONVERTERS | OTTL_EDITORS, f"{name}: {expression}"
        words = set(re.findall(r"\b[a-z_]+\b", without_strings(_PATH.sub("", expression))))
        assert words <= OTTL_KEYWORDS | OTTL_EDITORS, f"{name}: {sorted(words - OTTL_KEYWORDS)}"


def is_match(target: object, pattern: str) -> bool:
    return target is not None and re.search(pattern, str(target)) is not None


class _Attributes(dict[str, Any]):
    """OTTL's attribute map: a missing key reads as nil."""

    def __missing__(self, key: str) -> None:
        return None


def dropped(
    otel: dict[str, Any], event_name: str = "", attributes: Mapping[str, Any] = {}, scope: str = ""
) -> bool:
    """Whether the routing filter drops a record: any of its conditions holds."""
    record = SimpleNamespace(event_name=event_name, attributes=_Attributes(attributes))
    names = {"IsMatch": is_match, "log": record, "scope": SimpleNamespace(name=scope)}
    conditions = otel["processors"]["filter/routing"]["log_conditions"]
    return any(eval(condition, {"__builtins__": {}}, names) for condition in conditions)


def test_routing_filter_keeps_events_named_in_the_sollol_namespace(otel: dict[str, Any]) -> None:
    assert not dropped(otel, "sollol.routing.route_decision", scope="router")
    assert not dropped(otel, "SOLLOL.ROUTING.ROUTE_DECISION", scope="router")
    assert not dropped(otel, "sollol.route_decision", scope="router")  # a near miss the receiver reports


def test_routing_filter_keeps_events_named_by_an_event_name_attribute(otel: dict[str, Any]) -> None:
    assert not dropped(otel, attributes={"event.name": "sollol.routing.route_decision"}, scope="old-sdk")


def test_routing_filter_drops_the_applications_other_logs(otel: dict[str, Any]) -> None:
    assert dropped(otel, "http.request", scope="router")
    assert dropped(otel, attributes={"event.name": "app.started"}, scope="router")
    assert dropped(otel, attributes={"other": "sollol.routing.route_decision"}, scope="router")
    assert dropped(otel, "my.sollol.event", scope="router")


def test_routing_filter_drops_what_the_python_package_already_wrote_to_redis(otel: dict[str, Any]) -> None:
    assert dropped(otel, "sollol.routing.route_decision", scope=SCOPE)
