"""The dashboard's /healthz tells the truth: 200 only while its reader can read the stream."""

from __future__ import annotations

import httpx
import pytest
from receiver.refusing_redis import PASSWORD, refusing
from server_process import server_process
from waiting import eventually
from web.conftest import ServerFactory

#: Each state of Redis, and what the dashboard's /healthz says in it: reads work on a replica and
#: past maxmemory (where the reader reads without MULTI, which Redis 7 refuses then); a key of
#: another type and a user who may not read stop the reader.
STATES = {
    "OOM": (200, "ok"),
    "READONLY": (200, "ok"),
    "WRONGTYPE": (503, "refused"),
    "NOPERM": (503, "refused"),
    "down": (503, "unreachable"),
}


@pytest.mark.parametrize("kind", STATES)
def test_healthz_says_whether_the_reader_can_read(kind: str, redis_url: str, keys: tuple[str, str]) -> None:
    with (
        refusing(kind, redis_url, keys[0], allowed=["+xadd", "+publish"]) as url,
        server_process("dashboard", env={"SOLLOL_REDIS_URL": url}) as server,
    ):
        expected = STATES[kind]
        response = eventually(
            lambda: (r := httpx.get(f"{server.url}/healthz", timeout=10)).status_code == expected[0] and r,
            what=f"/healthz to answer {expected[0]}",
        )

    assert response.headers["content-type"] == "application/json"
    assert response.json()["state"] == expected[1], response.text
    assert (response.json()["reason"] is None) == (expected[0] == 200)
    assert PASSWORD not in response.text


class _Indexer:
    """A component as the history indexer is one: it reports, it does not decide the status."""

    def status(self) -> dict[str, object]:
        return {"state": "indexing", "indexed": 12}


def test_components_report_in_the_body_without_failing_the_check(start_dashboard: ServerFactory) -> None:
    dashboard = start_dashboard()
    assert dashboard.app is not None
    dashboard.app.state.dashboard.components["indexer"] = _Indexer()

    response = httpx.get(f"{dashboard.url}/healthz", timeout=10)

    assert response.status_code == 200
    assert response.json()["components"]["indexer"] == {"state": "indexing", "indexed": 12}
