"""max_upload_bytes holds on every path: `imagedex ingest`, the worker on folder and S3 objects
(refused from their size, before the download), and the worker's backoff while a dependency is
down is exponential, jittered, capped and logged once per outage."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from cli_helpers import imagedex_env, run_cli
from conftest import ColourRecognizer, png
from imagedex.ingest.backoff import Backoff
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.services import Services
from imagedex.storage.base import ObjectTooLargeError
from imagedex.storage.s3 import S3ObjectStore
from services import MotoServer


def test_ingest_refuses_a_file_over_the_cap_before_storing_it(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "small.png").write_bytes(png((255, 0, 0), 16))
    big = png((0, 0, 255), 600)
    (folder / "big.png").write_bytes(big)
    env = imagedex_env(tmp_path / "data", IMAGEDEX_MAX_UPLOAD_BYTES=str(len(big) - 1))
    proc = run_cli(env, "ingest", str(folder), check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"big.png: it is {len(big)} bytes, more than the {len(big) - 1} accepted" in (
        (proc.stdout + proc.stderr).replace("\n", "")
    )
    stored = sorted(p.name for p in (tmp_path / "data" / "images").rglob("*.png"))
    assert stored == ["small.png"]


def test_the_worker_refuses_a_folder_object_over_the_cap(services: Services) -> None:
    big = png((0, 0, 255), 600)
    upload_bytes(services, "big.png", big)
    upload_bytes(services, "small.png", png((255, 0, 0), 16))
    capped = Services.from_settings(services.settings.with_overrides(max_upload_bytes=len(big) - 1))
    Worker(capped, recognizers=[ColourRecognizer()]).run(once=True)
    assert capped.index.count() == 1
    (letter,) = capped.queue.dead_letters()
    assert letter.receive_count == 1
    assert "ObjectTooLargeError" in letter.error and "max_upload_bytes" in letter.error


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


def test_an_s3_object_over_the_cap_is_refused_without_reading_it(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in moto.aws_env().items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3", endpoint_url=moto.url)
    s3.create_bucket(Bucket="capped")
    s3.put_object(Bucket="capped", Key="big.bin", Body=os.urandom(300_000))
    store = S3ObjectStore("capped", client=s3)
    with pytest.raises(ObjectTooLargeError, match="300000 bytes, more than the 1000"):
        store.read("big.bin", 1000)
    assert len(store.read("big.bin", 300_000)) == 300_000


def test_backoff_grows_with_jitter_is_capped_resets_and_logs_once_per_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.backoff")
    draws = iter([0.0, 1.0] * 20)
    backoff = Backoff("queue", log, base=1.0, cap=16.0, rng=lambda: next(draws))
    with caplog.at_level(logging.WARNING, logger="test.backoff"):
        delays = [backoff.failed("connection refused") for _ in range(8)]
        assert delays == [0.5, 2.0, 2.0, 8.0, 8.0, 16.0, 8.0, 16.0]
        backoff.succeeded()
        assert backoff.failed("down again") == 0.5  # reset by the success
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "queue unavailable (connection refused)" in lines[0]
    assert "reachable again after 8 failed attempts" in lines[1]
