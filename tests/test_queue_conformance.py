"""One behaviour for every WorkQueue: the built-in SQLite queue, SQS (moto in server mode) and
RabbitMQ (a real node from deploy/rabbitmq.sh). Real time, short timeouts.

"The worker died" differs by backend: SQLite and SQS give a message back when its visibility
timeout ends; RabbitMQ when the consumer's connection closes.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from imagedex.queue import WorkQueue, open_queue
from imagedex.queue.sqs import SqsQueue
from services import MotoServer

MAX_RECEIVES = 3


@dataclass
class Backend:
    name: str
    open: Callable[[], WorkQueue]  # another handle on the same queue (another worker)
    #: receive with a short lease, then let it lapse as a dead worker would
    abandon: Callable[[WorkQueue], None]


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


def _lapse(queue: WorkQueue) -> None:
    assert len(queue.receive(max_messages=10, visibility_timeout=1, wait_seconds=1)) == 1
    time.sleep(1.5)


def _disconnect(queue: WorkQueue) -> None:
    assert len(queue.receive(max_messages=10, visibility_timeout=1, wait_seconds=1)) == 1
    queue.close()


@pytest.fixture(params=["sqlite", "sqs", "rabbitmq"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[WorkQueue] = []

    def keep(queue: WorkQueue) -> WorkQueue:
        opened.append(queue)
        return queue

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
        yield Backend("sqlite", lambda: keep(open_queue(url, tmp_path, MAX_RECEIVES)), _lapse)
    elif request.param == "sqs":
        moto: MotoServer = request.getfixturevalue("moto")
        env = moto.aws_env()
        client = boto3.client(
            "sqs",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        name = f"conf-{uuid.uuid4().hex[:8]}"
        dlq = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
        policy = {
            "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
            "maxReceiveCount": MAX_RECEIVES,
        }
        url = client.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps(policy)})[
            "QueueUrl"
        ]
        yield Backend("sqs", lambda: keep(SqsQueue(url, MAX_RECEIVES, client=client)), _lapse)
    else:
        base = request.getfixturevalue("rabbitmq_url")
        url = f"{base}?queue=conf-{uuid.uuid4().hex[:8]}"
        yield Backend(
            "rabbitmq", lambda: keep(open_queue(url, tmp_path, MAX_RECEIVES)), _disconnect
        )
    for queue in opened:
        queue.close()


def drain(queue: WorkQueue, want: int, timeout: float = 15) -> list[str]:
    bodies: list[str] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < want and time.monotonic() < deadline:
        batch = queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=1)
        bodies += [m.body for m in batch]
        queue.delete([m.receipt for m in batch])
    return bodies


def test_every_message_once_across_concurrent_workers(backend: Backend) -> None:
    queue = backend.open()
    for i in range(60):
        queue.send(str(i))
    seen: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        mine = backend.open()
        idle = 0
        while idle < 2:
            batch = mine.receive(max_messages=7, visibility_timeout=60, wait_seconds=1)
            idle = 0 if batch else idle + 1
            with lock:
                seen.extend(m.body for m in batch)
            mine.delete([m.receipt for m in batch])

    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(seen, key=int) == [str(i) for i in range(60)]
    stats = queue.stats()
    assert (stats.visible, stats.in_flight, stats.dead) == (0, 0, 0)


def test_retries_count_then_dead_letter_keeps_the_last_error(backend: Backend) -> None:
    queue = backend.open()
    queue.send("poison")
    for attempt in range(1, MAX_RECEIVES + 1):
        (message,) = queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=5)
        assert (message.body, message.receive_count) == ("poison", attempt)
        queue.release(message.receipt, f"boom {attempt}", delay=0.0)
    assert queue.receive(max_messages=10, wait_seconds=1) == []
    (dead,) = queue.dead_letters()
    assert (dead.body, dead.error) == ("poison", f"boom {MAX_RECEIVES}")
    assert queue.stats().dead == 1


def test_immediate_dead_letter_redrive_and_purge_by_id(backend: Backend) -> None:
    queue = backend.open()
    for body in ("a", "b", "c"):
        queue.send(body)
    received = []
    while len(received) < 3:
        received += queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=1)
    for message in received:
        queue.dead_letter(message.receipt, f"ImageDecodeError: {message.body} is not an image")
    letters = {d.body: d for d in queue.dead_letters()}
    assert sorted(letters) == ["a", "b", "c"]
    assert letters["b"].error == "ImageDecodeError: b is not an image"
    assert queue.redrive([letters["a"].id]) == 1
    assert queue.purge([letters["b"].id, "no-such-id"]) == 1
    assert [d.body for d in queue.dead_letters()] == ["c"]  # looked at, kept, still listed
    (back,) = queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=5)
    assert (back.body, back.receive_count) == ("a", 1)
    assert queue.purge() == 1 and queue.dead_letters() == []


def test_a_dead_workers_message_comes_back_and_counts(backend: Backend) -> None:
    backend.open().send("orphan")
    backend.abandon(backend.open())
    (again,) = backend.open().receive(max_messages=10, visibility_timeout=30, wait_seconds=5)
    assert (again.body, again.receive_count) == ("orphan", 2)


def test_long_work_keeps_its_lease(backend: Backend) -> None:
    worker, other = backend.open(), backend.open()
    worker.send("slow")
    (message,) = worker.receive(max_messages=1, visibility_timeout=2, wait_seconds=5)
    for _ in range(4):  # twice the lease, extended as the worker's heartbeat does
        time.sleep(1)
        worker.extend(message.receipt, 2)
        assert other.receive(max_messages=10, visibility_timeout=2) == []
    worker.delete([message.receipt])
    time.sleep(2.5)
    assert other.receive(max_messages=10, wait_seconds=1) == []


def test_release_with_delay_waits_then_comes_back(backend: Backend) -> None:
    queue = backend.open()
    queue.send("later")
    (message,) = queue.receive(max_messages=1, visibility_timeout=30, wait_seconds=5)
    queue.release(message.receipt, "store down", delay=1.0)
    assert queue.receive(max_messages=10, wait_seconds=0.3) == []
    assert queue.stats().in_flight == 1  # waiting out its delay: neither visible nor done
    (again,) = queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=8)
    assert (again.body, again.receive_count) == ("later", 2)
