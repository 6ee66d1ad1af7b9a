"""The AWS path against moto in server mode: real HTTP, real boto3, the real worker and model."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber
from PIL import Image

from cli_helpers import cli_json, imagedex_env, run_cli
from services import MotoServer, start_process
from tcp_proxy import TcpProxy

BUCKET = "imagedex-photos"
QUEUE = "imagedex-events"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws(moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fresh moto state, `imagedex aws setup` done, env for the CLI and clients for the test."""
    moto.reset()
    for key, value in moto.aws_env().items():
        monkeypatch.setenv(key, value)
    from imagedex import aws as aws_module

    aws_module.client.cache_clear()
    env = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_STORE=f"s3://{BUCKET}",
        IMAGEDEX_QUEUE=f"sqs://{QUEUE}",
        IMAGEDEX_VISIBILITY_TIMEOUT="5",
        **moto.aws_env(),
    )
    setup = cli_json(env, "aws", "setup", "--max-receive-count", "2")
    session = boto3.session.Session()
    return {
        "env": env,
        "setup": setup,
        "s3": session.client("s3", endpoint_url=moto.url),
        "sqs": session.client("sqs", endpoint_url=moto.url),
        "moto": moto,
    }


def test_setup_creates_wiring_and_is_idempotent(aws: dict[str, Any]) -> None:
    s3, sqs = aws["s3"], aws["sqs"]
    again = cli_json(aws["env"], "aws", "setup", "--max-receive-count", "2")
    assert again["queue_url"] == aws["setup"]["queue_url"] and again["bucket_created"] is False
    config = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    rules = config["QueueConfigurations"]
    assert len(rules) == again["notification_rules"]  # replaced, not appended
    suffixes = {r["Filter"]["Key"]["FilterRules"][0]["Value"] for r in rules}
    assert {".jpg", ".JPG", ".png", ".webp"} <= suffixes
    assert all(set(r["Events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"} for r in rules)
    attrs = sqs.get_queue_attributes(QueueUrl=again["queue_url"], AttributeNames=["All"])
    redrive = json.loads(attrs["Attributes"]["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 2 and redrive["deadLetterTargetArn"].endswith("-dlq")
    policy = json.loads(attrs["Attributes"]["Policy"])
    statement = policy["Statement"][0]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{BUCKET}"
    status = cli_json(aws["env"], "aws", "status")
    assert status["max_receive_count"] == 2 and status["dead"] == 0


def _jpeg(path: Path) -> bytes:
    return path.read_bytes()


def test_uploads_flow_from_s3_through_sqs_into_the_index(
    aws: dict[str, Any], photo_dir: Path
) -> None:
    s3, env = aws["s3"], aws["env"]
    s3.put_object(Bucket=BUCKET, Key="photos/chelsea.jpg", Body=_jpeg(photo_dir / "chelsea.jpg"))
    awkward = "photos/café au lait+1 ☕.jpg"
    s3.put_object(Bucket=BUCKET, Key=awkward, Body=_jpeg(photo_dir / "coffee.jpg"))
    s3.put_object(Bucket=BUCKET, Key="notes/readme.txt", Body=b"not an image: filtered out")
    # a multipart upload (parts >= 5 MB): S3 reports it as CompleteMultipartUpload
    big = _jpeg(photo_dir / "astronaut.jpg") + b"\0" * (6 * 1024 * 1024)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="big/astronaut.jpg")
    parts = []
    for number, chunk in enumerate((big[: 5 * 1024 * 1024], big[5 * 1024 * 1024 :]), start=1):
        part = s3.upload_part(
            Bucket=BUCKET,
            Key="big/astronaut.jpg",
            PartNumber=number,
            UploadId=upload["UploadId"],
            Body=chunk,
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="big/astronaut.jpg",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    stats = cli_json(env, "worker", "--once")
    assert stats["dead_lettered"] == 0
    assert stats["indexed"] == 3
    everything = cli_json(env, "search", "--limit", "50")
    keys = {h["key"]: h for h in everything["hits"]}
    assert set(keys) == {"photos/chelsea.jpg", awkward, "big/astronaut.jpg"}
    assert keys[awkward]["s3_location"] == f"s3://{BUCKET}/{awkward}"
    assert keys[awkward]["title"] == "café au lait+1 ☕.jpg"
    cats = cli_json(env, "search", "--label", "cat")
    assert [h["key"] for h in cats["hits"]] == ["photos/chelsea.jpg"]
    coffee = cli_json(env, "search", "--label", "espresso", "--min-confidence", "50")
    assert [h["key"] for h in coffee["hits"]] == [awkward]
    status = cli_json(env, "aws", "status")
    assert (status["visible"], status["in_flight"], status["dead"]) == (0, 0, 0)

    # deleting the object removes the document
    s3.delete_object(Bucket=BUCKET, Key="photos/chelsea.jpg")
    assert cli_json(env, "worker", "--once")["removed"] == 1
    assert cli_json(env, "search", "--label", "cat")["total"] == 0


def test_results_link_to_a_presigned_s3_url(aws: dict[str, Any], photo_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from imagedex.api import create_app
    from imagedex.config import load_settings
    from imagedex.services import Services

    data = _jpeg(photo_dir / "coffee.jpg")
    aws["s3"].put_object(Bucket=BUCKET, Key="c.jpg", Body=data)
    run_cli(aws["env"], "worker", "--once")
    settings = load_settings(environ=aws["env"])
    client = TestClient(create_app(Services.from_settings(settings)), base_url="http://127.0.0.1")
    hit = client.get("/api/search").json()["hits"][0]
    redirect = client.get(hit["url"], follow_redirects=False)
    assert redirect.status_code == 307
    location = redirect.headers["location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=" in location
    assert httpx.get(location).content == data


def test_poison_object_is_dead_lettered_with_its_reason(aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket=BUCKET, Key="bad/poison.jpg", Body=b"GIF89a but not really")
    proc = run_cli(aws["env"], "worker", "--once", "--json")
    assert json.loads(proc.stdout)["dead_lettered"] == 1
    assert "poison.jpg" in proc.stderr and "ImageDecodeError" in proc.stderr  # logged
    dead = cli_json(aws["env"], "dlq", "list")
    (message,) = dead["messages"]
    assert message["keys"] == ["bad/poison.jpg"]
    assert "ImageDecodeError" in message["error"]
    assert cli_json(aws["env"], "aws", "status")["dead"] == 1


def test_messages_of_dying_workers_reach_the_dlq_via_redrive_policy(
    aws: dict[str, Any], photo_dir: Path
) -> None:
    sqs, queue_url = aws["sqs"], aws["setup"]["queue_url"]
    # drain the s3:TestEvent that configuring notifications produced
    run_cli(aws["env"], "worker", "--once")
    aws["s3"].put_object(Bucket=BUCKET, Key="a.jpg", Body=_jpeg(photo_dir / "chelsea.jpg"))
    for _ in range(2):  # a "worker" that receives and dies, twice (maxReceiveCount = 2)
        got = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=1, WaitTimeSeconds=1)
        assert len(got.get("Messages", [])) == 1
        time.sleep(1.2)
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages") is None
    dead = cli_json(aws["env"], "dlq", "list")
    (message,) = dead["messages"]
    assert message["keys"] == ["a.jpg"] and "maxReceiveCount" in message["error"]
    assert cli_json(aws["env"], "dlq", "retry", "--all")["retried"] == 1
    assert cli_json(aws["env"], "worker", "--once")["indexed"] == 1
    assert cli_json(aws["env"], "aws", "status")["dead"] == 0


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _documents(env: dict[str, str]) -> int:
    return int(cli_json(env, "status")["documents"])


def test_worker_survives_sqs_outage_without_losing_messages(
    aws: dict[str, Any], photo_dir: Path, tmp_path: Path
) -> None:
    proxy = TcpProxy(aws["moto"].port)
    env = {**aws["env"], "AWS_ENDPOINT_URL": proxy.url}
    worker = start_process([sys.executable, "-m", "imagedex.cli.main", "worker"], env=env)
    try:
        aws["s3"].put_object(Bucket=BUCKET, Key="one.jpg", Body=_jpeg(photo_dir / "chelsea.jpg"))
        _wait_for(lambda: _documents(aws["env"]) == 1, 60, "first image not indexed")
        proxy.pause()
        for name in ("coffee.jpg", "rocket.jpg", "astronaut.jpg"):
            aws["s3"].put_object(Bucket=BUCKET, Key=f"during/{name}", Body=_jpeg(photo_dir / name))
        time.sleep(4)  # the worker cannot reach SQS/S3 now
        assert worker.poll() is None, "the worker died during the outage"
        assert _documents(aws["env"]) == 1
        proxy.resume()
        _wait_for(lambda: _documents(aws["env"]) == 4, 90, "worker did not recover")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        proxy.stop()
    status = cli_json(aws["env"], "aws", "status")
    assert (status["visible"], status["dead"]) == (0, 0)


def test_two_workers_share_one_queue_without_double_work(
    aws: dict[str, Any], photo_dir: Path
) -> None:
    env = {**aws["env"], "IMAGEDEX_BATCH_SIZE": "2"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "imagedex.cli.main", "worker", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    sources = sorted(photo_dir.iterdir())
    try:
        for i in range(20):
            img = Image.open(sources[i % len(sources)]).rotate(i * 11)
            buf = io.BytesIO()
            img.save(buf, "JPEG")
            aws["s3"].put_object(Bucket=BUCKET, Key=f"many/{i:02d}.jpg", Body=buf.getvalue())
        _wait_for(lambda: _documents(aws["env"]) == 20, 120, "not all images indexed")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
    results = [json.loads(w.communicate(timeout=60)[0]) for w in workers]
    assert sum(r["indexed"] for r in results) == 20  # each image recognised exactly once
    assert all(r["dead_lettered"] == 0 for r in results)
    assert all(r["indexed"] > 0 for r in results), results  # both really worked


def test_lambda_handler_reports_partial_batch_failures(
    aws: dict[str, Any], photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagedex.aws import lambda_handler as aws_lambda

    for key, value in aws["env"].items():
        monkeypatch.setenv(key, value)
    aws_lambda.reset()
    sqs, queue_url = aws["sqs"], aws["setup"]["queue_url"]
    aws["s3"].put_object(Bucket=BUCKET, Key="good.jpg", Body=_jpeg(photo_dir / "chelsea.jpg"))
    aws["s3"].put_object(Bucket=BUCKET, Key="bad.jpg", Body=b"\xff\xd8 truncated")
    records = []
    deadline = time.monotonic() + 10
    while len(records) < 3 and time.monotonic() < deadline:  # TestEvent + 2 uploads
        for m in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            records.append(
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "eventSource": "aws:sqs",
                }
            )
    assert len(records) == 3
    result = aws_lambda.handler({"Records": records}, None)
    bad_id = next(r["messageId"] for r in records if "bad.jpg" in r["body"])
    assert result == {"batchItemFailures": [{"itemIdentifier": bad_id}]}
    assert cli_json(aws["env"], "search", "--label", "cat")["hits"][0]["key"] == "good.jpg"
    # direct S3 invocation
    body = json.loads(next(r["body"] for r in records if "good.jpg" in r["body"]))
    assert aws_lambda.handler(body, None)["status"] == "ok"
    aws_lambda.reset()


def test_rekognition_request_shape_and_mapping(aws: dict[str, Any], photo_dir: Path) -> None:
    from imagedex.recognition.base import AnalyzerInput
    from imagedex.recognition.rekognition import RekognitionRecognizer

    client = boto3.client("rekognition", endpoint_url=aws["moto"].url)
    captured: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.rekognition.DetectLabels",
        lambda params, **_: captured.append(dict(params)),
    )
    recognizer = RekognitionRecognizer(
        client=client, min_confidence=70, max_labels=7, moderation=False
    )
    image = Image.open(photo_dir / "coffee.jpg")
    (analysis,) = recognizer.analyze([AnalyzerInput(image, f"s3://{BUCKET}/dir/c.jpg")])
    assert captured[0] == {
        "Image": {"S3Object": {"Bucket": BUCKET, "Name": "dir/c.jpg"}},
        "MaxLabels": 7,
        "MinConfidence": 70,
    }
    raw = client.detect_labels(Image={"S3Object": {"Bucket": BUCKET, "Name": "dir/c.jpg"}})
    assert [lb.label for lb in analysis.labels] == [x["Name"] for x in raw["Labels"]]
    first, expected = analysis.labels[0], raw["Labels"][0]
    assert first.confidence == pytest.approx(expected["Confidence"])
    assert first.parents == tuple(p["Name"] for p in expected["Parents"])
    assert first.aliases == tuple(a["Name"] for a in expected["Aliases"])
    box = expected["Instances"][0]["BoundingBox"]
    assert first.instances[0]["bbox"]["left"] == pytest.approx(box["Left"])
    # local images are sent as bytes
    (local,) = recognizer.analyze([image])
    assert "Bytes" in captured[-1]["Image"] and local.labels


def test_rekognition_moderation_mapping() -> None:
    """moto does not implement DetectModerationLabels; botocore's Stubber checks our request
    against the real service model and feeds a documented response shape."""
    from imagedex.recognition.base import AnalyzerInput
    from imagedex.recognition.rekognition import RekognitionRecognizer

    client = boto3.client("rekognition", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response("detect_labels", {"Labels": []})
    stubber.add_response(
        "detect_moderation_labels",
        {
            "ModerationLabels": [
                {"Name": "Explicit", "Confidence": 97.5, "ParentName": "Explicit Nudity"}
            ]
        },
        {"Image": {"S3Object": {"Bucket": "bkt", "Name": "k.jpg"}}, "MinConfidence": 55.0},
    )
    with stubber:
        (analysis,) = RekognitionRecognizer(client=client).analyze(
            [AnalyzerInput(Image.new("RGB", (8, 8)), "s3://bkt/k.jpg")]
        )
    assert analysis.moderation == [
        {"label": "Explicit", "confidence": 97.5, "parent": "Explicit Nudity"}
    ]


def test_missing_queue_gives_an_actionable_error(aws: dict[str, Any]) -> None:
    env = {**aws["env"], "IMAGEDEX_QUEUE": "sqs://no-such-queue"}
    proc = run_cli(env, "worker", "--once", check=False)
    assert proc.returncode != 0
    assert "imagedex aws setup" in proc.stderr
    assert os.environ.get("AWS_ENDPOINT_URL")  # the fixture really points boto3 at moto
