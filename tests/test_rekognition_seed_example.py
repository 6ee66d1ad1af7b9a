"""docs/rekognition.md's example, run as written: S3 sends each new object's event to SQS, the
consumer asks Rekognition for labels of the object and writes them to an index. Against
imagedex only `endpoint_url` changes: moto (server mode) plays S3 and SQS, a real `imagedex up`
with `IMAGEDEX_STORE=s3://photos` answers `detect_labels` and reads each `S3Object` through its
store."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from PIL import Image
from skimage import data

from cli_helpers import cli_json, free_port, imagedex_env, start_up
from services import MotoServer, wait_http

DOC = Path(__file__).resolve().parent.parent / "docs" / "rekognition.md"


def consumer_code() -> str:
    """The documented consumer, byte for byte (the python block that starts 'consumer.py')."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    (code,) = [b for b in blocks if b.startswith('"""consumer.py')]
    return code


def jpeg(array: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=90)  # type: ignore[arg-type]
    return buffer.getvalue()


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


def test_the_documented_consumer_runs_against_imagedex(moto: MotoServer, tmp_path: Path) -> None:
    aws = moto.aws_env()
    # the bucket and the queue its events go to, as `imagedex aws setup` (or AWS) wires them
    setup_env = imagedex_env(
        tmp_path / "setup", IMAGEDEX_STORE="s3://photos", IMAGEDEX_QUEUE="sqs://photo-events", **aws
    )
    queue_url = cli_json(setup_env, "aws", "setup")["queue_url"]

    port = free_port()
    server_env = imagedex_env(tmp_path / "data", IMAGEDEX_STORE="s3://photos", **aws)
    server = start_up(server_env, port, "--no-worker")
    consumer = None
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process=server, timeout=120)
        s3 = boto3.session.Session(
            aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
            region_name=aws["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=moto.url)
        s3.put_object(Bucket="photos", Key="trip/cat+1.jpg", Body=jpeg(data.chelsea()))
        s3.put_object(Bucket="photos", Key="trip/coffee.jpg", Body=jpeg(data.coffee()))

        work = tmp_path / "consumer"
        work.mkdir()
        (work / "consumer.py").write_text(consumer_code())
        env = {
            **aws,
            "PATH": "/usr/bin:/bin",
            "QUEUE_URL": queue_url,
            "REKOGNITION_URL": f"http://127.0.0.1:{port}/rekognition",
        }
        consumer = subprocess.Popen([sys.executable, "consumer.py"], cwd=work, env=env)
        index = work / "labels.jsonl"
        deadline = time.monotonic() + 120
        rows: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(rows) < 2:
            assert consumer.poll() is None, "the documented consumer stopped"
            time.sleep(0.5)
            if index.exists():
                rows = [json.loads(line) for line in index.read_text().splitlines()]
        by_key = {row["key"]: row for row in rows}
        assert set(by_key) == {"trip/cat+1.jpg", "trip/coffee.jpg"}  # the key URL-decoded
        cat = dict(by_key["trip/cat+1.jpg"]["labels"])  # type: ignore[arg-type]
        coffee = dict(by_key["trip/coffee.jpg"]["labels"])  # type: ignore[arg-type]
        assert cat.get("Cat", 0) >= 90 and "Cat" not in coffee
        assert min(cat.values()) >= 90 and len(cat) <= 10  # MinConfidence=90, MaxLabels=10
        assert any(name in coffee for name in ("Coffee", "Espresso", "Drink"))
    finally:
        if consumer is not None:
            consumer.kill()
            consumer.wait(timeout=10)
        server.terminate()
        server.wait(timeout=30)
