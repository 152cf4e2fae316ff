"""What a sender is told is what lands: 200 only for what the writer holds whole, 503 only for an
overload a retry clears, in every combination of request size, concurrent senders and backlog state."""

from __future__ import annotations

import collections
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from google.rpc.status_pb2 import Status
from prometheus_client.parser import text_string_to_metric_families
from receiver.receiver_harness import RunningReceiver
from receiver.test_receiver_http import PROTOBUF, _attrs, log_record, logs_request
from redis_servers import RedisServer
from server_process import server_process
from waiting import eventually

from sollol_otel.receiver import ReceiverConfig

StreamEvents = Callable[[], list[dict[str, Any]]]
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
    monkeypatch: pytest.MonkeyPatch,
    private_redis: RedisServer,
    start_receiver: Callable[..., RunningReceiver],
    keys: tuple[str, str],
    size: int,
    senders: int,
    redis_down: bool,
) -> None:
    monkeypatch.setenv("SOLLOL_REDIS_URL", private_redis.url)
    monkeypatch.setenv("SOLLOL_ROUTING_BACKLOG", str(BACKLOG))
    receiver = start_receiver(ReceiverConfig(admit_timeout=2.0))
    if redis_down:
        private_redis.stop()
    bodies = [request_of(sender, size) for sender in range(senders)]
    answers: list[httpx.Response | None] = [None] * senders

    def send(sender: int) -> None:
        answers[sender] = httpx.post(
            receiver.url + "/v1/logs", content=bodies[sender], headers=PROTOBUF, timeout=30
        )

    threads = [threading.Thread(target=send, args=(sender,)) for sender in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if redis_down:
        private_redis.start()
    receiver.flush()
    client = redis.Redis.from_url(private_redis.url)
    first = landed(client, keys[0])

    for sender, answer in enumerate(answers):
        assert answer is not None
        mine = sum(count for model, count in first.items() if model.startswith(f"s{sender}-"))
        if answer.status_code == 200:
            assert mine == size, f"sender {sender} was told all {size} were taken; {mine} landed"
        else:
            assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
            told = _WRITTEN.match(Status.FromString(answer.content).message)
            assert mine == (int(told.group(1)) if told else 0), Status.FromString(answer.content).message
    assert max(first.values(), default=1) == 1  # nothing twice
    assert receiver.receiver.writer.stats().dropped == 0
    assert receiver.counted("sollol_receiver_events_total", signal="logs", outcome="accepted") == sum(
        first.values()
    )

    for sender, answer in enumerate(answers):  # a retry clears every 503
        if answer is not None and answer.status_code != 200:
            eventually(
                lambda body=bodies[sender]: (
                    httpx.post(
                        receiver.url + "/v1/logs", content=body, headers=PROTOBUF, timeout=30
                    ).status_code
                    == 200
                ),
                what="a retry to be accepted",
            )
    receiver.flush()
    everything = landed(client, keys[0])
    client.close()
    assert everything == collections.Counter(f"s{s}-{n}" for s in range(senders) for n in range(size))
