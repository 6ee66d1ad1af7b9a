"""`imagedex aws setup` refuses bucket and queue names S3 or SQS would refuse, up front, in one
line, against moto in server mode (real HTTP, real boto3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_helpers import cli_json, imagedex_env, run_cli
from services import MotoServer


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


def _env(moto: MotoServer, tmp_path: Path, bucket: str, queue: str) -> dict[str, str]:
    return imagedex_env(
        tmp_path / "data",
        COLUMNS="500",  # one error line, unwrapped
        IMAGEDEX_STORE=f"s3://{bucket}",
        IMAGEDEX_QUEUE=f"sqs://{queue}",
        **moto.aws_env(),
    )


BAD_BUCKETS = {
    "Holiday_Photos": "lower-case letters, digits, dots and hyphens",
    "ab": "3 to 63 characters",
    "b" * 64: "3 to 63 characters",
    "photos-": "beginning and ending with a letter or digit",
    "my..photos": "two dots",
    "192.168.5.4": "IP address",
    "xn--photos": "reserved",
    "photos--x-s3": "reserved",
}

BAD_QUEUES = {
    "image events": "letters, digits, hyphens and underscores",
    "events.fifo": "FIFO",
    "q" * 77: "at most 76 characters",
}


@pytest.mark.parametrize("bucket", list(BAD_BUCKETS))
def test_an_invalid_bucket_name_is_one_clear_error_before_anything_is_created(
    moto: MotoServer, tmp_path: Path, bucket: str
) -> None:
    moto.reset()
    env = _env(moto, tmp_path, bucket, "imagedex-events")
    for command in (("aws", "setup"), ("aws", "status")):
        proc = run_cli(env, *command, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 2, output
        assert "Traceback" not in output
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1, output
        assert "not a valid S3 bucket name" in lines[0] and BAD_BUCKETS[bucket] in lines[0]
        assert "IMAGEDEX_STORE" in lines[0] and repr(bucket) in lines[0]
    # nothing half made: no queue was created before the bucket name was refused
    proc = run_cli(
        _env(moto, tmp_path, "imagedex-photos", "imagedex-events"), "aws", "status", check=False
    )
    assert proc.returncode != 0


@pytest.mark.parametrize("queue", list(BAD_QUEUES))
def test_an_invalid_queue_name_is_one_clear_error(
    moto: MotoServer, tmp_path: Path, queue: str
) -> None:
    moto.reset()
    proc = run_cli(_env(moto, tmp_path, "imagedex-photos", queue), "aws", "setup", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if line.strip()]) == 1, output
    assert "not a valid SQS queue name" in output and BAD_QUEUES[queue] in output


def test_names_at_the_limits_are_accepted(moto: MotoServer, tmp_path: Path) -> None:
    moto.reset()
    bucket, queue = "photos.example-1." + "b" * 46, "q" * 76
    assert len(bucket) == 63
    result = cli_json(_env(moto, tmp_path, bucket, queue), "aws", "setup")
    assert result["bucket"] == bucket and result["bucket_created"] is True
    assert result["dead_letter_queue_url"].endswith("/" + queue + "-dlq")
