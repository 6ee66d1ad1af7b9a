"""`imagedex backup` and `imagedex restore` through the real command: a backup taken while a
running worker indexes uploads restores into an empty data dir with nothing lost; a target that
is not empty, a corrupt or incomplete backup and the parts a backup cannot cover are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli_helpers import cli_json, free_port, imagedex_env, run_cli, start_up
from conftest import png
from imagedex.config import load_settings
from imagedex.index.sqlite import SqliteIndex
from imagedex.ingest.upload import upload_bytes
from imagedex.services import Services
from imagedex.storage.local import LocalObjectStore

#: one analyzer and no text embedding: the test is about the data, not the models
LIGHT = {
    "IMAGEDEX_RECOGNIZERS": "imagenet",
    "IMAGEDEX_SEMANTIC": "false",
    "IMAGEDEX_VISIBILITY_TIMEOUT": "5",
    "IMAGEDEX_BATCH_SIZE": "2",
    "IMAGEDEX_UPLOADS_PER_MINUTE": "100000",
}
PASSWORD = "a long password"


def run_with_input(env: dict[str, str], text: str, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imagedex.cli.main", *args],
        env=env,
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def wait_healthy(client: httpx.Client, server: subprocess.Popen[bytes]) -> None:
    def healthy() -> bool:
        assert server.poll() is None, "imagedex up exited"
        try:
            return client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, 120, "imagedex up")


def all_hits(client: httpx.Client) -> dict[str, dict[str, Any]]:
    response = client.get("/api/search", params={"limit": 1000, "sort": "oldest"})
    response.raise_for_status()
    return {hit["id"]: hit for hit in response.json()["hits"]}


class Uploader(threading.Thread):
    """Uploads photos through the API, keeping a few messages waiting in the queue, so that the
    worker is always busy and work is always pending, until stopped."""

    def __init__(self, base: str, photos: list[Path]) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.photos = photos
        self.stop = threading.Event()
        self.acknowledged: list[tuple[float, dict[str, Any]]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base, timeout=60) as client:
                sent = 0
                while not self.stop.is_set():
                    if client.get("/api/queue").json()["visible"] >= 6:
                        self.stop.wait(0.05)
                        continue
                    photo = self.photos[sent % len(self.photos)]
                    name = f"{sent:04d}-{photo.name}"
                    response = client.post(
                        "/api/images", files={"file": (name, photo.read_bytes(), "image/jpeg")}
                    )
                    response.raise_for_status()
                    self.acknowledged.append((time.time(), response.json()))
                    sent += 1
        except BaseException as exc:  # the test asserts on it
            self.error = exc


def test_backup_while_ingesting_restores_into_an_empty_data_dir_with_nothing_lost(
    photo_dir: Path, tmp_path: Path
) -> None:
    # the targets' folders lie beside the data dir
    env = imagedex_env(tmp_path / "data", **LIGHT, IMAGEDEX_DELIVERY_FOLDER_ROOT=str(tmp_path))
    run_with_input(
        env, PASSWORD + "\n", "users", "add", "ann", "--role", "admin", "--password-stdin"
    )
    key = cli_json(env, "keys", "create", "--name", "nightly", "--role", "viewer")["key"]
    run_cli(
        env, "report", "create", "cats", "--query", "label:cat", "--format", "csv",
        "--schedule", "daily@08:00", "--to", f"folder:{tmp_path / 'reports'}",
    )  # fmt: skip
    run_cli(env, "alert", "create", "cats", "--label", "cat", "--to", f"folder:{tmp_path / 'out'}")
    reports = cli_json(env, "report", "list")
    rules = cli_json(env, "alert", "list")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_up(env, port)
    uploader = Uploader(base, sorted(photo_dir.iterdir()))
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            wait_healthy(client, server)
            uploader.start()
            wait_until(lambda: len(all_hits(client)) >= 6, 300, "the first images indexed")
            started = time.time()
            indexed_before = all_hits(client)
            cat = next(h for h in indexed_before.values() if h["title"].endswith("chelsea.jpg"))
            link = client.get(f"/api/images/{cat['id']}/link").json()["path"]
            manifest = cli_json(env, "backup", str(tmp_path / "backup"))
            finished = time.time()
            wait_until(  # the system kept working through the backup, and goes on after it
                lambda: any(t > finished for t, _ in uploader.acknowledged), 300, "more uploads"
            )
    finally:
        uploader.stop.set()
        uploader.join(60)
        server.terminate()
        server.wait(60)
    assert uploader.error is None, uploader.error
    uploaded_before = {r["id"] for t, r in uploader.acknowledged if t <= started}

    counts = manifest["counts"]
    assert counts["images"] >= len(indexed_before)
    queue = counts["queue"]
    assert queue["visible"] + queue["in_flight"] > 0, "no work was pending at the snapshot"
    assert queue["dead"] == 0
    assert {s["name"] for s in manifest["stores"]} >= {
        "queue.sqlite3", "index.sqlite3", "auth.sqlite3", "reports.sqlite3", "alerts.sqlite3",
        "schedule.sqlite3",
    }  # fmt: skip
    assert [f["name"] for f in manifest["files"]] == ["secret.key"]

    data_dir = tmp_path / "restored"
    restored = imagedex_env(data_dir, **LIGHT, IMAGEDEX_AUTH="on")
    outcome = cli_json(restored, "restore", str(tmp_path / "backup"))
    assert outcome["objects"] == manifest["objects"]["count"]

    # as restored, before any worker ran: the snapshot's documents, each with its object
    index = SqliteIndex(data_dir / "index.sqlite3")
    try:
        snapshot_docs = {doc.id: doc for doc in index.iter_documents()}
    finally:
        index.close()
    assert len(snapshot_docs) == counts["images"]
    assert indexed_before.keys() <= snapshot_docs.keys()
    bucket = LocalObjectStore(data_dir / "images")
    assert all(bucket.head(doc.key).etag == doc.etag for doc in snapshot_docs.values())
    status = cli_json(restored, "status")
    assert status["queue"]["visible"] + status["queue"]["in_flight"] >= (
        queue["visible"] + queue["in_flight"]
    )
    assert cli_json(restored, "report", "list") == reports
    assert cli_json(restored, "alert", "list") == rules
    assert [u["name"] for u in cli_json(restored, "users", "list")] == ["ann"]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_up(restored, port)
    try:
        with httpx.Client(base_url=base, timeout=60) as anonymous:
            wait_healthy(anonymous, server)
            assert anonymous.get("/api/search").status_code == 401
            assert anonymous.get(link).status_code == 200  # the signing secret came back too
        bearer = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, timeout=60, headers=bearer) as client:
            assert snapshot_docs.keys() <= all_hits(client).keys()  # searchable at once

            def drained() -> bool:
                state = client.get("/api/queue").json()
                return state["visible"] == 0 and state["in_flight"] == 0

            wait_until(drained, 300, "the restored worker to finish the queued work")
            assert client.get("/api/queue").json()["dead"] == 0
            hits = all_hits(client)
            assert uploaded_before <= hits.keys()  # queued at snapshot time: indexed now
            objects = {info.key for info in bucket.list()}
            assert {hit["key"] for hit in hits.values()} == objects  # no object left unindexed
            cats = client.get("/api/search", params={"label": "cat", "limit": 1000}).json()
            assert cat["id"] in {hit["id"] for hit in cats["hits"]}
        with httpx.Client(base_url=base, timeout=60) as browser:
            login = browser.post("/api/login", json={"name": "ann", "password": PASSWORD})
            assert login.status_code == 200, login.text
    finally:
        server.terminate()
        server.wait(60)


def test_uploads_and_deletions_while_the_bucket_is_copied_are_finished_after_restore(
    photo_dir: Path, tmp_path: Path
) -> None:
    """An upload after the queue was copied, and an object deleted before the bucket was: the
    backup queues the events the restored worker needs to finish both."""
    from imagedex.backup import create_backup  # here: the other tests run the command only

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(photo_dir / name, pictures / name)
    env = imagedex_env(tmp_path / "data", **LIGHT)
    assert cli_json(env, "ingest", str(pictures), "--wait")["indexed"] == 2
    settings = load_settings(environ=env)
    services = Services.from_settings(settings)
    (coffee,) = [d for d in services.index.iter_documents() if d.key.endswith("coffee.jpg")]
    puppy = (photo_dir / "puppy.jpg").read_bytes()

    def between_the_queue_and_the_index(stage: str, done: int, _total: int | None) -> None:
        if stage == "stores" and done == 1:  # the queue is copied; nothing else is yet
            upload_bytes(services, "late/puppy.jpg", puppy, content_type="image/jpeg")
            services.store.delete(coffee.key)

    try:
        manifest = create_backup(
            settings, tmp_path / "backup", progress=between_the_queue_and_the_index
        )
    finally:
        services.close()
    counts = manifest["counts"]
    assert (counts["images"], counts["requeued"], counts["removals_queued"]) == (2, 1, 1)

    restored = imagedex_env(tmp_path / "restored", **LIGHT)
    cli_json(restored, "restore", str(tmp_path / "backup"))
    run_cli(restored, "worker", "--once")
    bucket = LocalObjectStore(tmp_path / "restored" / "images")
    keys = {info.key for info in bucket.list()}
    assert coffee.key not in keys and "late/puppy.jpg" in keys and len(keys) == 2
    hits = cli_json(restored, "search", "--limit", "100")["hits"]
    assert {hit["key"] for hit in hits} == keys
    assert cli_json(restored, "status")["queue"] == {"visible": 0, "in_flight": 0, "dead": 0}


# -- refusals -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of three uploads still waiting for a worker, and an API key."""
    root = tmp_path_factory.mktemp("small")
    pictures = root / "pictures"
    pictures.mkdir()
    for name, colour in (("red.png", (200, 0, 0)), ("green.png", (0, 200, 0))):
        (pictures / name).write_bytes(png(colour))
    (pictures / "blue.png").write_bytes(png((0, 0, 200)))
    env = imagedex_env(root / "data")
    run_cli(env, "ingest", str(pictures))
    cli_json(env, "keys", "create", "--name", "k", "--role", "viewer")
    manifest = cli_json(env, "backup", str(root / "backup"))
    assert manifest["counts"]["queue"]["visible"] == 3
    return root / "backup"


def refusal(env: dict[str, str], *args: str) -> str:
    """The error of a command that must refuse: one message, no traceback, non-zero exit."""
    proc = run_cli(env, *args, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("error:")
    return " ".join(proc.stderr.split())


def copy_of(backup: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(backup, tmp_path / "backup"))


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_restored_backup_keeps_the_queued_uploads_and_the_keys(
    small_backup: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = imagedex_env(data_dir)
    assert cli_json(env, "restore", "--check", str(small_backup))["ok"] is True
    assert not data_dir.exists()  # --check writes nothing
    data_dir.mkdir()  # an empty folder (a mount point, say) is filled, not replaced
    folder = data_dir.stat().st_ino
    outcome = cli_json(env, "restore", str(small_backup))
    assert outcome["objects"] == 3 and outcome["counts"]["queue"]["visible"] == 3
    assert data_dir.stat().st_ino == folder
    assert cli_json(env, "status")["queue"]["visible"] == 3
    assert [k["name"] for k in cli_json(env, "keys", "list")] == ["k"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no staging left behind


def test_restore_puts_the_bucket_and_queue_where_the_settings_say(
    small_backup: Path, tmp_path: Path
) -> None:
    bucket = tmp_path / "disk" / "images"
    queue = tmp_path / "queues" / "queue.db"
    env = imagedex_env(
        tmp_path / "data", IMAGEDEX_STORE=bucket.as_uri(), IMAGEDEX_QUEUE=f"sqlite://{queue}"
    )
    queue.parent.mkdir()
    queue.write_text("someone's file")
    message = refusal(env, "restore", str(small_backup))
    assert f"the queue file {queue} exists" in message
    assert queue.read_text() == "someone's file" and not (tmp_path / "data").exists()
    queue.unlink()
    cli_json(env, "restore", str(small_backup))
    assert cli_json(env, "status")["queue"]["visible"] == 3
    assert sorted(info.key.rsplit("/")[-1] for info in LocalObjectStore(bucket).list()) == [
        "blue.png", "green.png", "red.png",
    ]  # fmt: skip
    assert not (tmp_path / "data" / "images").exists()
    assert not (tmp_path / "data" / "queue.sqlite3").exists()


def test_restore_refuses_a_data_dir_that_is_not_empty(small_backup: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("mine")
    message = refusal(imagedex_env(data_dir), "restore", str(small_backup))
    assert f"{data_dir} is not empty" in message and "Move it aside" in message
    assert [p.name for p in data_dir.iterdir()] == ["notes.txt"]
    assert (data_dir / "notes.txt").read_text() == "mine"


def test_restore_refuses_a_corrupt_store_and_writes_nothing(
    small_backup: Path, tmp_path: Path
) -> None:
    backup = copy_of(small_backup, tmp_path)
    flip_a_byte(backup / "stores" / "queue.sqlite3")
    target = tmp_path / "target"
    env = imagedex_env(target / "data")
    for command in (("restore", "--check"), ("restore",)):
        message = refusal(env, *command, str(backup))
        assert "is corrupt: stores/queue.sqlite3 does not match its checksum" in message
    assert not target.exists() or list(target.iterdir()) == []  # no half-restored data dir


def test_restore_refuses_a_corrupt_object(small_backup: Path, tmp_path: Path) -> None:
    backup = copy_of(small_backup, tmp_path)
    (victim,) = (backup / "objects").rglob("green.png")
    flip_a_byte(victim)
    env = imagedex_env(tmp_path / "data")
    message = refusal(env, "restore", str(backup))
    assert "is corrupt" in message and "green.png does not match its checksum" in message
    assert not (tmp_path / "data").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["backup"]  # no staging folder left behind


def test_restore_refuses_an_incomplete_backup(small_backup: Path, tmp_path: Path) -> None:
    backup = copy_of(small_backup, tmp_path)
    env = imagedex_env(tmp_path / "data")
    (victim,) = (backup / "objects").rglob("blue.png")
    victim.unlink()
    message = refusal(env, "restore", str(backup))
    assert "is incomplete" in message and "blue.png is missing" in message
    (backup / "stores" / "auth.sqlite3").unlink()
    assert "stores/auth.sqlite3 is missing" in refusal(env, "restore", str(backup))
    (backup / "manifest.json").unlink()
    message = refusal(env, "restore", str(backup))
    assert "not a complete imagedex backup" in message and "manifest.json" in message
    assert not (tmp_path / "data").exists()


def test_restore_refuses_a_backup_from_a_newer_format(small_backup: Path, tmp_path: Path) -> None:
    backup = copy_of(small_backup, tmp_path)
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["format_version"] = 99
    (backup / "manifest.json").write_text(json.dumps(manifest))
    message = refusal(imagedex_env(tmp_path / "data"), "restore", str(backup))
    assert "format 99" in message and "upgrade imagedex" in message


def test_restore_refuses_a_bucket_of_another_name(small_backup: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    env = imagedex_env(tmp_path / "data", IMAGEDEX_STORE=photos.as_uri())
    message = refusal(env, "restore", str(small_backup))
    assert "name the bucket 'images'" in message and "folder named 'images'" in message
    assert not (tmp_path / "data").exists() and not photos.exists()


def test_backup_refuses_a_destination_that_is_not_empty_or_inside_the_data_dir(
    tmp_path: Path,
) -> None:
    env = imagedex_env(tmp_path / "data")
    cli_json(env, "keys", "create", "--name", "k", "--role", "viewer")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "old.txt").write_text("an older backup")
    assert f"{taken} is not empty" in refusal(env, "backup", str(taken))
    assert [p.name for p in taken.iterdir()] == ["old.txt"]
    inside = tmp_path / "data" / "backup"
    assert "is inside the data dir" in refusal(env, "backup", str(inside))
    assert not inside.exists()
    missing = imagedex_env(tmp_path / "nothing")
    assert "does not exist" in refusal(missing, "backup", str(tmp_path / "b"))


def test_backup_names_what_it_cannot_cover(tmp_path: Path) -> None:
    env = imagedex_env(
        tmp_path / "data", IMAGEDEX_INDEX="opensearch+http://admin:pw@127.0.0.1:9/images"
    )
    cli_json(env, "keys", "create", "--name", "k", "--role", "viewer")
    message = refusal(env, "backup", str(tmp_path / "backup"))
    assert "the search index opensearch+http" in message and "--local-only" in message
    assert "pw" not in message
    assert not (tmp_path / "backup").exists()
    proc = run_cli(env, "backup", "--local-only", str(tmp_path / "backup"))
    assert "not covered: the search index" in " ".join(proc.stderr.split())
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert [n.split(":")[0] for n in manifest["not_covered"]] == [
        "the search index opensearch+http"
    ]
    assert "pw" not in json.dumps(manifest)
    assert [s["name"] for s in manifest["stores"]] == ["auth.sqlite3"]  # no index of its own
