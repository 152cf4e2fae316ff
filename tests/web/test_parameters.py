"""Every query parameter a client can get wrong: a 4xx with a message, never a 500 or a cut stream."""

from __future__ import annotations

import httpx
import pytest
from web.dashboard_harness import DashboardServer
from websockets.asyncio.client import connect

PAST_64_BITS = str(2**64)
BAD = {
    "/api/routing_events": [
        "before=0-0",
        f"before={PAST_64_BITS}-0",
        f"before=1-{PAST_64_BITS}",
        "before=abc",
        "limit=-1",
        "limit=99999999999999999999999",
        "limit=ten",
    ],
    "/api/stats": ["top=0", "top=1001", "top=ten"],
    "/api/timeline": ["top=0", "top=-3", "top=1000&bucket=1s&since=1h"],
    "/sse/routing_events": [
        f"last_id={PAST_64_BITS}-0",
        "last_id=1-2-3",
        f"offset={2**63}",
        "offset=-5",
        "backlog=100001",
    ],
}


@pytest.mark.parametrize(
    ("path", "query"), [(path, query) for path, queries in BAD.items() for query in queries]
)
def test_a_bad_parameter_is_a_400_naming_it(dashboard: DashboardServer, path: str, query: str) -> None:
    response = httpx.get(f"{dashboard.url}{path}?{query}", timeout=10)
    assert response.status_code == 400
    assert query.split("=", maxsplit=1)[0] in response.json()["error"]


def test_a_bad_last_event_id_header_is_a_400(dashboard: DashboardServer) -> None:
    response = httpx.get(
        f"{dashboard.url}/sse/routing_events", headers={"Last-Event-ID": f"{PAST_64_BITS}-0"}
    )
    assert response.status_code == 400 and "Last-Event-ID" in response.json()["error"]


@pytest.mark.parametrize("query", [f"last_id={PAST_64_BITS}-0", f"offset={2**63}", "backlog=-1"])
async def test_a_websocket_with_a_bad_parameter_is_told_why_and_closed_with_policy(
    dashboard: DashboardServer, query: str
) -> None:
    async with connect(f"{dashboard.ws_url}?{query}") as connection:
        error = await connection.recv()
        await connection.wait_closed()
    assert query.split("=", maxsplit=1)[0] in str(error)
    assert connection.close_code == 1008
