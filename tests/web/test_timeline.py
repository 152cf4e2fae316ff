"""`GET /api/timeline` against Redis 6.2 and 7: exact counts per time bucket, split by one dimension."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import redis
from web.dashboard_harness import DashboardServer, write_at

#: A whole minute ten minutes ago, so 10-second buckets start on it.
T0 = (int(time.time()) // 60 - 10) * 60_000


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture
def written(versioned_client: redis.Redis, keys: tuple[str, str]) -> None:
    """Three busy moments: 0 s, 5 s (same 10 s bucket) and 35 s; one entry that is not an event."""
    route = {"model": "llama3.2:3b", "backend": "ollama", "instance_id": "alpha_1"}
    fallback = {
        "event_type": "FALLBACK_TRIGGERED",
        "model": "codellama:13b",
        "backend": "rpc",
        "instance_id": "beta_2",
    }
    node = {
        "event_type": "OLLAMA_NODE_SELECTED",
        "node_url": "10.0.0.21:11434",
        "backend": None,
        "instance_id": None,
    }
    write_at(versioned_client, keys[0], T0, route, route, fallback)
    write_at(versioned_client, keys[0], T0 + 5_000, node, route)
    write_at(versioned_client, keys[0], T0 + 35_000, fallback, node)
    versioned_client.xadd(keys[0], {"event": b"not json"}, id=f"{T0 + 36_000}-0")


def timeline(server: DashboardServer, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/timeline", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_counts_per_bucket_by_event_type_add_up_to_the_events(
    versioned_dashboard: DashboardServer, written: None
) -> None:
    answer = timeline(versioned_dashboard, since=iso(T0), until=iso(T0 + 40_000), bucket="10s")
    assert (answer["bucket_seconds"], answer["by"], answer["events"], answer["skipped"]) == (
        10,
        "event_type",
        7,
        1,
    )
    assert answer["buckets"] == [
        {
            "start": iso(T0),
            "counts": {"ROUTE_DECISION": 3, "FALLBACK_TRIGGERED": 1, "OLLAMA_NODE_SELECTED": 1},
        },
        {"start": iso(T0 + 10_000), "counts": {}},
        {"start": iso(T0 + 20_000), "counts": {}},
        {"start": iso(T0 + 30_000), "counts": {"FALLBACK_TRIGGERED": 1, "OLLAMA_NODE_SELECTED": 1}},
    ]


@pytest.mark.parametrize(
    ("by", "first", "last"),
    [
        ("backend", {"ollama": 3, "rpc": 1, "(none)": 1}, {"rpc": 1, "(none)": 1}),
        ("model", {"llama3.2:3b": 4, "codellama:13b": 1}, {"codellama:13b": 1, "llama3.2:3b": 1}),
        ("node", {"(none)": 4, "10.0.0.21:11434": 1}, {"(none)": 1, "10.0.0.21:11434": 1}),
        ("instance", {"alpha_1": 3, "beta_2": 1, "(none)": 1}, {"beta_2": 1, "(none)": 1}),
    ],
)
def test_counts_by_each_dimension_with_one_label_for_none(
    versioned_dashboard: DashboardServer, written: None, by: str, first: dict[str, int], last: dict[str, int]
) -> None:
    buckets = timeline(versioned_dashboard, since=iso(T0), until=iso(T0 + 40_000), bucket="20s", by=by)[
        "buckets"
    ]
    assert [bucket["counts"] for bucket in buckets] == [first, last]


def test_filters_apply_to_the_counts(versioned_dashboard: DashboardServer, written: None) -> None:
    answer = timeline(versioned_dashboard, since=iso(T0), until=iso(T0 + 40_000), bucket="1m", q="codellama")
    assert answer["buckets"] == [{"start": iso(T0), "counts": {"FALLBACK_TRIGGERED": 2}}]


def test_until_is_not_included(versioned_dashboard: DashboardServer, written: None) -> None:
    answer = timeline(versioned_dashboard, since=iso(T0), until=iso(T0 + 5_000), bucket="10s")
    assert (answer["events"], len(answer["buckets"])) == (3, 1)


def test_without_since_the_timeline_starts_at_the_oldest_event_and_runs_to_now(
    versioned_dashboard: DashboardServer, written: None
) -> None:
    answer = timeline(versioned_dashboard)
    starts = [datetime.fromisoformat(b["start"].replace("Z", "+00:00")) for b in answer["buckets"]]
    step = answer["bucket_seconds"]
    assert answer["events"] == 7 and answer["complete"] is True
    # Ten minutes ago when the module was imported, maybe much longer by now in a long suite: at
    # most 120 buckets whose size divides a minute, so the first starts exactly at T0.
    assert len(starts) <= 121 and 60 % step == 0
    assert all((b - a).total_seconds() == step for a, b in itertools.pairwise(starts))
    assert starts[0].timestamp() * 1000 == T0 and starts[-1].timestamp() > time.time() - 2 * step
    assert sum(sum(b["counts"].values()) for b in answer["buckets"]) == 7


def test_last_id_caps_what_is_counted(
    versioned_dashboard: DashboardServer, written: None, versioned_client: redis.Redis, keys: tuple[str, str]
) -> None:
    [last] = write_at(versioned_client, keys[0], T0 + 50_000, {})
    write_at(versioned_client, keys[0], T0 + 55_000, {})
    answer = timeline(versioned_dashboard, bucket="1m", last_id=last)
    assert (answer["events"], answer["last_id"]) == (8, last)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"by": "colour"}, "by='colour' is not one of event_type | backend | model | node | instance"),
        ({"bucket": "0.5s"}, "bucket='0.5s' is not a whole number of seconds"),
        ({"bucket": "soon"}, "bucket='soon'"),
        ({"bucket": "1s", "since": "30d"}, "buckets over this range (at most 5000)"),
    ],
)
def test_a_bad_parameter_is_refused_with_a_clear_error(
    versioned_dashboard: DashboardServer, params: dict[str, str], error: str
) -> None:
    response = httpx.get(f"{versioned_dashboard.url}/api/timeline", params=params)
    assert response.status_code == 400 and error in response.json()["error"]


def test_an_empty_stream_has_one_empty_bucket(versioned_dashboard: DashboardServer) -> None:
    answer = timeline(versioned_dashboard, bucket="10s")
    assert (answer["events"], answer["last_id"], [b["counts"] for b in answer["buckets"]]) == (0, "0-0", [{}])
