"""POST /api/notifications on a real `imagedex up`: the bucket notifications that MinIO's webhook
target and Ceph RGW's HTTP endpoint send are queued and indexed by the server's worker; callers
without an editor key or the notification_token get 401/403; bodies the worker could never index
get 400 and queue nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli_helpers import cli_json, free_port, imagedex_env, start_up

TOKEN = "s3cret-notification-token"


@contextmanager
def running_up(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = start_up(env, port)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            assert process.poll() is None, "imagedex up exited"
            assert time.monotonic() < deadline, "imagedex up did not start"
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _record(event_name: str, source: str, bucket: str, key: str, size: object) -> dict[str, Any]:
    return {
        "eventVersion": "2.0",
        "eventSource": source,
        "awsRegion": "",
        "eventTime": "2026-01-02T03:04:05.000Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "imagedex",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": size, "eTag": "", "sequencer": "17A2B3C4D5E6F7"},
        },
    }


def _documents(base: str, key: str) -> int:
    return int(httpx.get(f"{base}/healthz", headers=_bearer(key)).json()["documents"])


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(params=["sqlite", "rabbitmq"])
def queue_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "sqlite"
    url: str = request.getfixturevalue("rabbitmq_url")
    return f"{url}?queue=hook-{uuid.uuid4().hex[:8]}"


def test_minio_and_ceph_webhooks_are_queued_and_indexed(
    photo_dir: Path, tmp_path: Path, queue_url: str
) -> None:
    bucket_dir = tmp_path / "photos"
    (bucket_dir / "summer 2026").mkdir(parents=True)
    (bucket_dir / "summer 2026" / "cat+dog.jpg").write_bytes(
        (photo_dir / "chelsea.jpg").read_bytes()
    )
    (bucket_dir / "coffee.jpg").write_bytes((photo_dir / "coffee.jpg").read_bytes())
    env = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_AUTH="on",
        IMAGEDEX_STORE=bucket_dir.as_uri(),
        IMAGEDEX_QUEUE=queue_url,
        IMAGEDEX_NOTIFICATION_TOKEN=TOKEN,
        IMAGEDEX_RECOGNIZERS="imagenet",
        IMAGEDEX_SEMANTIC="false",
    )
    editor = cli_json(env, "keys", "create", "--name", "minio", "--role", "editor")["key"]
    viewer = cli_json(env, "keys", "create", "--name", "reader", "--role", "viewer")["key"]
    minio = {  # MinIO's webhook target: EventName/Key on top, s3: event names, encoded keys
        "EventName": "s3:ObjectCreated:Put",
        "Key": "photos/summer 2026/cat+dog.jpg",
        "Records": [
            _record("s3:ObjectCreated:Put", "minio:s3", "photos", "summer+2026/cat%2Bdog.jpg", 1)
        ],
    }
    ceph = {"Records": [_record("ObjectCreated:Put", "ceph:s3", "photos", "coffee.jpg", "1024")]}
    with running_up(env) as base:
        url = f"{base}/api/notifications"
        # refused: nobody, a wrong token, a viewer, a bad body, another bucket, a huge body
        assert httpx.post(url, json=minio).status_code == 401
        wrong = httpx.post(url, json=minio, headers=_bearer("guess"))
        assert wrong.status_code == 401 and "notification_token" in wrong.json()["detail"]
        assert httpx.post(url, json=minio, params={"token": "guess"}).status_code == 401
        assert httpx.post(url, json=minio, headers=_bearer(viewer)).status_code == 403
        bad = httpx.post(url, content=b'{"Records": 3}', headers=_bearer(editor))
        assert bad.status_code == 400 and "Records" in bad.json()["detail"]
        other = json.loads(json.dumps(ceph).replace('"photos"', '"elsewhere"'))
        foreign = httpx.post(url, json=other, headers=_bearer(TOKEN))
        assert foreign.status_code == 400 and "elsewhere" in foreign.json()["detail"]
        huge = httpx.post(url, content=b" " * (300 * 1024), headers=_bearer(editor))
        assert huge.status_code == 413
        assert cli_json(env, "status")["queue"] == {"visible": 0, "in_flight": 0, "dead": 0}

        # accepted: an editor key (MinIO's auth_token), the token in the URL (Ceph RGW), a test
        test = httpx.post(url, json={"Event": "s3:TestEvent"}, headers=_bearer(TOKEN))
        assert test.status_code == 200 and test.json() == {"events": 0, "queued": False}
        answer = httpx.post(url, json=minio, headers=_bearer(editor))
        assert answer.status_code == 200 and answer.json() == {"events": 1, "queued": True}
        assert httpx.post(url, json=ceph, params={"token": TOKEN}).status_code == 200

        deadline = time.monotonic() + 180
        while _documents(base, editor) < 2:
            assert time.monotonic() < deadline, "the notified objects were not indexed"
            time.sleep(0.2)
        time.sleep(1)  # anything wrongly queued would be worked on by now
        hits = httpx.get(f"{base}/api/search", headers=_bearer(editor)).json()["hits"]
        assert sorted(h["key"] for h in hits) == ["coffee.jpg", "summer 2026/cat+dog.jpg"]
        queue = httpx.get(f"{base}/api/queue", headers=_bearer(editor)).json()
        assert (queue["visible"], queue["dead"]) == (0, 0)
