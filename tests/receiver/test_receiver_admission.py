"""What a sender is told is what lands: 200 only for what the writer holds whole, 503 only for an
overload a retry clears, in every combination of request size, concurrent senders and backlog state."""

from __future__ import annotations

import collections
import json
import re
import threading

import httpx
import pytest
import redis
from google.rpc.status_pb2 import Status
from prometheus_client.parser import text_string_to_metric_families
from receiver.test_receiver_http import PROTOBUF, _attrs, log_record, logs_request
from redis_servers import RedisServer
from server_process import server_process
from waiting import eventually

BACKLOG = 50
#: Request sizes against a backlog of BACKLOG events.
SIZES = {"small": 10, "the whole backlog": BACKLOG, "over the backlog": 120}
_WRITTEN = re.compile(r"^(\d+) of the request's (\d+) routing events were written")


def request_of(sender: int, size: int) -> bytes:
    """`size` records, each a decision of its own (its own time and model)."""
    body: bytes = logs_request(
        *(
            log_record(
                time_unix_nano=1_764_201_600_000_000_000 + sender * 1_000_000 + n,
                attributes=_attrs(gen_ai__request__model=f"s{sender}-{n}"),
            )
            for n in range(size)
        )
    )
    return body


def metric(text: str, sample: str, **labels: str) -> float:
    return sum(
        found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == sample and labels.items() <= found.labels.items()
    )


def landed(client: redis.Redis, stream: str) -> collections.Counter[str]:
    """How many times each record (by its model) is in the stream."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(stream)  # type: ignore[assignment]
    return collections.Counter(str(json.loads(fields[b"event"])["model"]) for _, fields in entries)


def test_a_12000_record_request_with_the_default_backlog_lands_whole(
    keys: tuple[str, str], redis_client: redis.Redis
) -> None:
    with server_process("receiver", env={"SOLLOL_ROUTING_STREAM_MAXLEN": "100000"}) as server:
        response = httpx.post(
            f"{server.url}/v1/logs", content=request_of(0, 12_000), headers=PROTOBUF, timeout=60
        )
        eventually(lambda: redis_client.xlen(keys[0]) >= 12_000, what="12,000 entries in the stream")
        exposition = httpx.get(f"{server.url}/metrics").text

    assert response.status_code == 200 and response.content == b""  # no partial_success
    assert redis_client.xlen(keys[0]) == 12_000
    assert metric(exposition, "sollol_receiver_events_total", outcome="accepted") == 12_000
    assert metric(exposition, "sollol_receiver_redis_dropped_total") == 0


@pytest.mark.parametrize("redis_down", [False, True], ids=["redis up", "redis down"])
@pytest.mark.parametrize("senders", [1, 4])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_what_a_sender_is_told_agrees_with_what_lands(
    private_redis: RedisServer, keys: tuple[str, str], size: int, senders: int, redis_down: bool
) -> None:
    env = {"SOLLOL_REDIS_URL": private_redis.url, "SOLLOL_ROUTING_BACKLOG": str(BACKLOG)}
    bodies = [request_of(sender, size) for sender in range(senders)]
    answers: list[httpx.Response | None] = [None] * senders
    with server_process("receiver", env=env) as server, redis.Redis.from_url(private_redis.url) as client:
        if redis_down:
            private_redis.stop()

        def send(sender: int) -> None:
            answers[sender] = httpx.post(
                f"{server.url}/v1/logs", content=bodies[sender], headers=PROTOBUF, timeout=30
            )

        threads = [threading.Thread(target=send, args=(sender,)) for sender in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        if redis_down:
            private_redis.start()
        exposition = flushed(server.url)
        first = landed(client, keys[0])

        for sender, answer in enumerate(answers):
            assert answer is not None
            mine = sum(count for model, count in first.items() if model.startswith(f"s{sender}-"))
            if answer.status_code == 200:
                assert mine == size, f"sender {sender} was told all {size} were taken; {mine} landed"
            else:
                assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
                message = Status.FromString(answer.content).message
                told = _WRITTEN.match(message)
                assert mine == (int(told.group(1)) if told else 0), message
        assert max(first.values(), default=1) == 1  # nothing twice
        assert metric(exposition, "sollol_receiver_redis_dropped_total") == 0
        assert metric(exposition, "sollol_receiver_events_total", outcome="accepted") == sum(first.values())

        for sender, answer in enumerate(answers):  # a retry clears every 503
            if answer is not None and answer.status_code != 200:
                eventually(
                    lambda body=bodies[sender]: (
                        httpx.post(
                            f"{server.url}/v1/logs", content=body, headers=PROTOBUF, timeout=30
                        ).status_code
                        == 200
                    ),
                    what="a retry to be accepted",
                )
        flushed(server.url)
        everything = landed(client, keys[0])

    assert everything == collections.Counter(f"s{s}-{n}" for s in range(senders) for n in range(size))


def flushed(url: str) -> str:
    """The receiver's /metrics once nothing waits for Redis."""
    return eventually(
        lambda: (
            (text := httpx.get(f"{url}/metrics").text)
            and metric(text, "sollol_receiver_redis_backlog") == 0
            and text
        ),
        what="the receiver's backlog to be written",
    )
