"""Real `imagedex worker` processes on a real RabbitMQ queue: kill -9 mid-batch, a broker restart
and a broker killed hard (kill -9) during ingestion, two workers sharing one queue, and bucket
notifications that a MinIO or Ceph RGW store publishes to an exchange."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pika
from PIL import Image

from cli_helpers import cli_json, imagedex_env, run_cli
from conftest import rabbitmq
from imagedex.queue.base import Message
from imagedex.queue.rabbitmq import QueueUnavailableError, RabbitQueue, open_amqp


def _photos(photo_dir: Path, folder: Path, count: int) -> None:
    folder.mkdir()
    sources = sorted(photo_dir.iterdir())
    for i in range(count):
        img = Image.open(sources[i % len(sources)]).convert("RGB")
        img = img.rotate(i * 7, expand=True).resize((160 + i * 5, 120 + i * 3))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        (folder / f"img{i:02d}.jpg").write_bytes(buf.getvalue())


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return imagedex_env(
        tmp_path / "data",
        IMAGEDEX_QUEUE=f"{url}?queue=w-{uuid.uuid4().hex[:8]}",
        IMAGEDEX_RECOGNIZERS="imagenet",
        IMAGEDEX_SEMANTIC="false",
        IMAGEDEX_BATCH_SIZE="4",
        **extra,
    )


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "imagedex.cli.main", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _documents(env: dict[str, str]) -> int:
    """Read straight from the index file: a CLI call would take longer than a batch."""
    path = Path(env["IMAGEDEX_DATA_DIR"]) / "index.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=10) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM docs").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _wait_documents(env: dict[str, str], at_least: int, timeout: float = 180) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = _documents(env)
        if count >= at_least:
            return count
        assert time.monotonic() < deadline, f"only {count} documents after {timeout}s"
        time.sleep(0.01)


def _assert_all_once(env: dict[str, str], count: int) -> None:
    final = cli_json(env, "status")
    assert final["documents"] == count
    assert final["queue"] == {"visible": 0, "in_flight": 0, "dead": 0}
    hits = cli_json(env, "search", "--limit", "100")["hits"]
    assert sorted(h["key"] for h in hits) == [f"many/img{i:02d}.jpg" for i in range(count)]


def test_kill_9_mid_batch_loses_and_doubles_nothing(
    photo_dir: Path, tmp_path: Path, rabbitmq_url: str
) -> None:
    _photos(photo_dir, tmp_path / "many", 40)
    env = _env(tmp_path, rabbitmq_url)
    run_cli(env, "ingest", str(tmp_path / "many"))
    assert cli_json(env, "status")["queue"]["visible"] == 40
    worker = _worker(env)
    try:
        _wait_documents(env, 4)
    finally:
        worker.kill()  # SIGKILL: the broker hands its unacknowledged messages out again
        worker.wait()
    mid = cli_json(env, "status")
    assert mid["documents"] < 40, "the worker finished before it could be killed"
    assert mid["queue"]["visible"] > 0
    stats = cli_json(env, "worker", "--once")
    assert stats["dead_lettered"] == 0
    _assert_all_once(env, 40)


def test_two_worker_processes_share_one_queue(
    photo_dir: Path, tmp_path: Path, rabbitmq_url: str
) -> None:
    _photos(photo_dir, tmp_path / "many", 16)
    env = _env(tmp_path, rabbitmq_url)
    run_cli(env, "ingest", str(tmp_path / "many"))
    workers = [_worker(env), _worker(env)]
    try:
        _wait_documents(env, 16)
        time.sleep(0.5)
        assert all(w.poll() is None for w in workers)
    finally:
        for w in workers:
            w.terminate()
            w.wait(timeout=60)
    _assert_all_once(env, 16)


def test_a_broker_restart_during_ingestion_loses_nothing(photo_dir: Path, tmp_path: Path) -> None:
    node = tmp_path / "node"
    url = rabbitmq(node)
    try:
        _photos(photo_dir, tmp_path / "many", 40)
        env = _env(tmp_path, url, IMAGEDEX_RETRY_DELAY="0.2")
        run_cli(env, "ingest", str(tmp_path / "many"))
        worker = _worker(env)
        try:
            _wait_documents(env, 2)
            worker.send_signal(signal.SIGSTOP)  # frozen mid-batch while the broker restarts
            held = _documents(env)
            assert held < 40, "ingestion finished before the broker stopped"
            rabbitmq(node, "stop")
            assert rabbitmq(node) == url  # same port, same data: durable queue, persistent messages
            worker.send_signal(signal.SIGCONT)  # its connection is gone: it reconnects
            _wait_documents(env, 40)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        _assert_all_once(env, 40)
    finally:
        rabbitmq(node, "stop")


def _kill_9(node: Path) -> None:
    os.kill(int((node / "node.pid").read_text()), signal.SIGKILL)


def test_a_broker_killed_hard_loses_and_doubles_nothing(photo_dir: Path, tmp_path: Path) -> None:
    """`kill -9` of the RabbitMQ node, then a start on the same data dir, twice: right after a
    queue was created and filled, and while a worker is ingesting. Publishes are confirmed
    after the quorum queue's fsync; what a dead connection held is handed out again."""
    node = tmp_path / "node"
    url = rabbitmq(node)
    try:
        # 1. a queue killed as soon as it has been created (and filled): RabbitMQ 3.10 would
        # start it afresh, empty and leaderless, were the queue not left to settle first
        fresh_url = f"{url}?queue=fresh-{uuid.uuid4().hex[:8]}"
        fresh = open_amqp(fresh_url, tmp_path, 3)
        sent = {fresh.send(f"m{i}") for i in range(10)}
        _kill_9(node)
        fresh.close()
        assert rabbitmq(node) == url
        fresh = open_amqp(fresh_url, tmp_path, 3)
        try:
            got = _receive_all(fresh, 10, timeout=90)
        finally:
            fresh.close()
        assert {m.id for m in got} == sent

        # 2. killed while a worker is mid-ingest
        env = _env(tmp_path, url)
        _photos(photo_dir, tmp_path / "many", 40)
        run_cli(env, "ingest", str(tmp_path / "many"))
        worker = _worker(env)
        try:
            _wait_documents(env, 4)
            _kill_9(node)
            assert _documents(env) < 40, "ingestion finished before the broker was killed"
            restarted = time.monotonic()
            assert rabbitmq(node) == url
            _wait_documents(env, 40, timeout=120)
            recovered = time.monotonic() - restarted
            assert worker.poll() is None, "the worker exited instead of reconnecting"
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        _assert_all_once(env, 40)
        print(f"all indexed {recovered:.1f} s after the node was started again")
    finally:
        rabbitmq(node, "stop")


def _receive_all(queue: RabbitQueue, count: int, timeout: float) -> list[Message]:
    """Receive and acknowledge until `count` messages came, failing after `timeout` seconds
    (a leaderless quorum queue makes each get wait for the broker's own timeout first)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        try:
            batch = queue.receive(count, wait_seconds=1)
        except QueueUnavailableError:
            continue
        queue.delete([m.receipt for m in batch])
        got += batch
    assert len(got) == count, f"{len(got)} of {count} messages after {timeout}s"
    return got


def _publish(url: str, exchange: str, routing_key: str, body: dict[str, object]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, routing_key, json.dumps(body).encode(), mandatory=True)
    finally:
        connection.close()


def _record(event_name: str, source: str, bucket: str, key: str, size: object) -> dict[str, object]:
    return {
        "eventVersion": "2.1",
        "eventSource": source,
        "awsRegion": "us-east-1",
        "eventTime": "2026-01-02T03:04:05.000Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "eTag": "", "sequencer": "0001"},
        },
    }


def test_store_notifications_published_to_an_exchange_are_indexed(
    photo_dir: Path, tmp_path: Path, rabbitmq_url: str
) -> None:
    """MinIO's AMQP target (EventName/Key at the top, `s3:` event names) and Ceph RGW's (sizes
    as strings) publish to an exchange; the queue URL's exchange= binds the work queue to it."""
    env = _env(tmp_path, rabbitmq_url)
    env["IMAGEDEX_QUEUE"] += "&exchange=bucketevents&routing_key=photos"
    bucket_dir = tmp_path / "bucket"
    (bucket_dir / "summer 2026").mkdir(parents=True)
    (bucket_dir / "summer 2026" / "cat+dog.jpg").write_bytes(
        (photo_dir / "chelsea.jpg").read_bytes()
    )
    (bucket_dir / "coffee.jpg").write_bytes((photo_dir / "coffee.jpg").read_bytes())
    env["IMAGEDEX_STORE"] = f"file://{bucket_dir}"
    bucket = "bucket"  # a folder store's bucket is the folder's name
    assert cli_json(env, "status")["queue"]["visible"] == 0  # declares and binds the queue
    minio = {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/summer 2026/cat+dog.jpg",
        "Records": [
            _record("s3:ObjectCreated:Put", "minio:s3", bucket, "summer+2026/cat%2Bdog.jpg", 1)
        ],
    }
    ceph = {"Records": [_record("ObjectCreated:Put", "ceph:s3", bucket, "coffee.jpg", "1024")]}
    _publish(rabbitmq_url, "bucketevents", "photos", minio)
    _publish(rabbitmq_url, "bucketevents", "photos", ceph)
    _publish(rabbitmq_url, "bucketevents", "photos", {"Event": "s3:TestEvent"})
    stats = cli_json(env, "worker", "--once")
    assert stats["dead_lettered"] == 0
    keys = sorted(h["key"] for h in cli_json(env, "search", "--limit", "10")["hits"])
    assert keys == ["coffee.jpg", "summer 2026/cat+dog.jpg"]
