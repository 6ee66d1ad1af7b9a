"""`imagedex dlq purge` on the built-in queue and on SQS (moto in server mode), and `dlq list`
in a narrow terminal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import cli_json, imagedex_env, run_cli
from imagedex.ingest.events import make_notification
from imagedex.queue import WorkQueue, open_queue
from services import MotoServer

REASON = "ImageDecodeError: cannot identify image file: JPEG image data is truncated"


def dead_letters(queue: WorkQueue, keys: list[str], bucket: str = "images") -> None:
    """Messages about `keys` that a worker gave up on, with a reason each."""
    for key in keys:
        queue.send(json.dumps(make_notification("created", bucket, key, 10, "etag")))
    received = []
    while len(received) < len(keys):
        received += queue.receive(max_messages=10, visibility_timeout=60, wait_seconds=1)
    for message in received:
        queue.dead_letter(message.receipt, REASON)


def listed_ids(env: dict[str, str]) -> list[str]:
    return sorted(m["id"] for m in cli_json(env, "dlq", "list")["messages"])


def test_purge_chosen_ids_then_all_on_the_builtin_queue(tmp_path: Path) -> None:
    data = tmp_path / "data"
    queue = open_queue("sqlite", data)
    dead_letters(queue, [f"holiday/IMG_{i:04d}.JPG" for i in range(4)])
    queue.send("still waiting")  # not a dead letter: purge never touches it
    env = imagedex_env(data)
    first, second, *rest = listed_ids(env)

    purged = cli_json(env, "dlq", "purge", first, second, first, "--yes")
    assert purged == {"purged": 2, "not_found": 0}
    assert listed_ids(env) == rest

    gone = run_cli(env, "dlq", "purge", first, rest[0], "--yes", check=False)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr
    assert "1 dead letter(s) purged" in gone.stderr
    assert "1 of the 2 id(s) given named no dead letter" in gone.stderr
    assert listed_ids(env) == rest[1:]

    unconfirmed = run_cli(env, "dlq", "purge", "--all", check=False)
    assert unconfirmed.returncode == 2 and "needs --yes" in unconfirmed.stderr
    nothing = run_cli(env, "dlq", "purge", "--yes", check=False)
    assert nothing.returncode == 2 and "give message ids or --all" in nothing.stderr
    assert listed_ids(env) == rest[1:]

    assert cli_json(env, "dlq", "purge", "--all", "--yes") == {"purged": 1, "not_found": 0}
    assert cli_json(env, "dlq", "list")["total"] == 0
    stats = queue.stats()
    assert (stats.visible, stats.dead) == (1, 0)
    assert "dead letter(s) purged" in run_cli(env, "dlq", "purge", "--all", "-y").stderr


def test_dead_letter_ids_are_never_cut_in_an_80_column_terminal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    queue = open_queue("sqlite", data)
    long_key = "2026/summer holidays in the mountains/day 3/IMG_20260712_101112_HDR.jpg"
    dead_letters(queue, [long_key, "b.jpg"])
    env = imagedex_env(data, COLUMNS="80")
    table = run_cli(env, "dlq", "list").stdout
    assert max(len(line) for line in table.splitlines()) <= 80
    for message_id in listed_ids(imagedex_env(data)):
        assert message_id in table  # whole, on one line, ready to copy into `dlq retry`
    assert "…" not in table
    assert "HDR.jpg" in table.replace("│", "").replace(" ", "")


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def sqs(moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fresh moto with `imagedex aws setup` done: the queue, its DLQ and the CLI's env."""
    moto.reset()
    for key, value in moto.aws_env().items():
        monkeypatch.setenv(key, value)
    from imagedex import aws as aws_module

    aws_module.client.cache_clear()
    env = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_STORE="s3://purge-photos",
        IMAGEDEX_QUEUE="sqs://purge-events",
        **moto.aws_env(),
    )
    cli_json(env, "aws", "setup", "--max-receive-count", "2")
    queue = open_queue("sqs://purge-events", tmp_path)
    # the s3:TestEvent that configuring notifications sent
    for message in queue.receive(max_messages=10, wait_seconds=1):
        queue.delete([message.receipt])
    return {"env": env, "queue": queue}


def test_purge_on_sqs_says_how_many_and_keeps_the_others_visible(sqs: dict[str, Any]) -> None:
    env, queue = sqs["env"], sqs["queue"]
    dead_letters(queue, [f"k{i}.jpg" for i in range(13)], bucket="purge-photos")
    keys = {m["id"]: m["keys"] for m in cli_json(env, "dlq", "list")["messages"]}
    ids = sorted(keys)
    assert len(ids) == 13 and cli_json(env, "aws", "status")["dead"] == 13

    chosen = ids[:3]
    assert cli_json(env, "dlq", "purge", *chosen, "--yes") == {"purged": 3, "not_found": 0}
    # the dead letters looked at and kept are visible again at once, not after a timeout
    assert listed_ids(env) == ids[3:]

    retried = cli_json(env, "dlq", "retry", ids[3])
    assert retried == {"retried": 1}
    assert listed_ids(env) == ids[4:]

    assert cli_json(env, "dlq", "purge", "--all", "--yes") == {"purged": 9, "not_found": 0}
    assert cli_json(env, "dlq", "list")["messages"] == []
    assert cli_json(env, "aws", "status")["dead"] == 0
    (back,) = queue.receive(max_messages=10, wait_seconds=1)  # the retried one, not purged
    assert [json.loads(back.body)["Records"][0]["s3"]["object"]["key"]] == keys[ids[3]]
