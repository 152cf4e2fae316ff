"""The receiver's /healthz tells the truth: 200 only while Redis would take its writes."""

from __future__ import annotations

import httpx
import pytest
import redis
from receiver.receiver_harness import RunningReceiver
from receiver.refusing_redis import PASSWORD, refusing
from server_process import server_process

from sollol_otel.diagnostics import Component

#: Each way Redis refuses every write, and what /healthz then says.
REFUSALS = {
    "OOM": ("refused", "OutOfMemoryError"),
    "READONLY": ("refused", "ReadOnlyError"),
    "WRONGTYPE": ("refused", "WRONGTYPE"),
    "NOPERM": ("refused", "NoPermissionError"),
    "down": ("unreachable", "ConnectionError"),
}


@pytest.mark.parametrize("kind", REFUSALS)
def test_healthz_is_503_with_the_state_and_reason_while_redis_refuses_every_write(
    kind: str, redis_url: str, keys: tuple[str, str]
) -> None:
    with (
        refusing(kind, redis_url, keys[0], allowed=["+@read"]) as url,
        server_process("receiver", env={"SOLLOL_REDIS_URL": url}) as server,
    ):
        response = httpx.get(f"{server.url}/healthz", timeout=10)

    state, reason = REFUSALS[kind]
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == "unavailable" and response.json()["state"] == state
    assert reason in response.json()["reason"]
    assert PASSWORD not in response.text


def test_healthz_is_200_while_redis_takes_writes_and_nothing_is_written_by_asking(
    redis_client: redis.Redis, keys: tuple[str, str]
) -> None:
    with server_process("receiver") as server:
        response = httpx.get(f"{server.url}/healthz", timeout=10)

    assert redis_client.exists(keys[0]) == 0

    assert response.status_code == 200 and response.json()["state"] == "ok"


class _Indexer:
    """A component as the history indexer is one: it reports, it does not decide the status."""

    def status(self) -> dict[str, object]:
        return {"state": "behind", "lag_seconds": 12}


class _Broken:
    def status(self) -> dict[str, object]:
        raise RuntimeError("bug")


def test_components_report_in_the_body_without_failing_the_check(receiver: RunningReceiver) -> None:
    components: dict[str, Component] = receiver.receiver.components
    components.update(indexer=_Indexer(), broken=_Broken())

    response = httpx.get(f"{receiver.url}/healthz", timeout=10)

    assert response.status_code == 200
    assert response.json()["components"] == {
        "indexer": {"state": "behind", "lag_seconds": 12},
        "broken": {"state": "error", "reason": "status() raised RuntimeError"},
    }
