"""Ingest never silently replaces, never hangs, and never stores what is not an image: keys
below the common root, kept-both and --overwrite, --wait that ends with reasons, HEIC and AVIF,
and non-images refused on the CLI, the API and the watched folder."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cli_helpers import cli_json, imagedex_env, run_cli
from conftest import ColourRecognizer, png
from imagedex.api import create_app
from imagedex.ingest.upload import upload_paths, wait_for
from imagedex.ingest.watch import FolderWatcher
from imagedex.ingest.worker import Worker
from imagedex.services import Services
from imagedex.storage.base import content_etag

RECOGNIZERS = "imagenet"  # a real model, the quickest to load


def write_png(path: Path, colour: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(colour))
    return path


def stored_files(data_dir: Path) -> list[str]:
    bucket = data_dir / "images"
    if not bucket.exists():
        return []
    return sorted(
        p.relative_to(bucket).as_posix()
        for p in bucket.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(bucket).parts)
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return imagedex_env(tmp_path / "data", IMAGEDEX_RECOGNIZERS=RECOGNIZERS)


def test_same_names_in_one_ingest_keep_their_folders(tmp_path: Path, env: dict[str, str]) -> None:
    red = write_png(tmp_path / "c1" / "pic.png", (255, 0, 0))
    blue = write_png(tmp_path / "c2" / "pic.png", (0, 0, 255))
    proc = run_cli(env, "ingest", str(red), str(blue), "--wait", "--timeout", "120", "--json")
    outcome = json.loads(proc.stdout)
    assert proc.returncode == 0 and outcome["indexed"] == 2 and outcome["pending"] == 0
    assert {r["key"]: r["etag"] for r in outcome["results"]} == {
        "c1/pic.png": content_etag(red.read_bytes()),
        "c2/pic.png": content_etag(blue.read_bytes()),
    }
    assert stored_files(tmp_path / "data") == ["c1/pic.png", "c2/pic.png"]
    # a folder given with a file below the same root keeps its own name too
    write_png(tmp_path / "c3" / "sub" / "pic.png", (0, 255, 0))
    again = cli_json(env, "ingest", str(tmp_path / "c3"), str(red))
    assert {u["key"]: u["action"] for u in again["uploaded"]} == {
        "c3/sub/pic.png": "uploaded",
        "c1/pic.png": "unchanged",
    }


def test_a_taken_key_keeps_both_unless_overwrite(tmp_path: Path, env: dict[str, str]) -> None:
    first = write_png(tmp_path / "card1" / "IMG_0001.PNG", (255, 0, 0))
    second = write_png(tmp_path / "card2" / "IMG_0001.PNG", (0, 0, 255))
    assert cli_json(env, "ingest", str(first))["uploaded"][0]["key"] == "IMG_0001.PNG"

    (kept,) = cli_json(env, "ingest", str(second))["uploaded"]
    other_key = f"IMG_0001~{content_etag(second.read_bytes())[:8]}.PNG"
    assert kept["action"] == "renamed" and kept["key"] == other_key
    assert kept["wanted_key"] == "IMG_0001.PNG"
    bucket = tmp_path / "data" / "images"
    assert (bucket / "IMG_0001.PNG").read_bytes() == first.read_bytes()
    assert (bucket / other_key).read_bytes() == second.read_bytes()

    # both are indexed, under the file's name as title
    run_cli(env, "worker", "--once")
    titles = {h["key"]: h["title"] for h in cli_json(env, "search")["hits"]}
    assert titles == {"IMG_0001.PNG": "IMG_0001.PNG", other_key: "IMG_0001.PNG"}

    # the same bytes again, from either card: nothing stored, nothing queued
    for path, key in ((first, "IMG_0001.PNG"), (second, other_key)):
        (same,) = cli_json(env, "ingest", str(path))["uploaded"]
        assert (same["action"], same["key"]) == ("unchanged", key)
    assert cli_json(env, "status")["queue"]["visible"] == 0
    assert "already stored (unchanged)" in run_cli(env, "ingest", str(second)).stderr

    # overwriting is explicit and reported
    replaced = run_cli(env, "ingest", str(second), "--overwrite")
    assert "overwrote IMG_0001.PNG" in replaced.stderr
    assert (bucket / "IMG_0001.PNG").read_bytes() == second.read_bytes()
    said = run_cli(env, "ingest", str(first)).stderr  # the first photo again: kept beside
    assert f"stored as IMG_0001~{content_etag(first.read_bytes())[:8]}.PNG" in said


def test_wait_ends_and_names_dead_letters_and_pending(
    tmp_path: Path, env: dict[str, str], photo_dir: Path
) -> None:
    good = photo_dir / "coffee.jpg"
    truncated = tmp_path / "in" / "truncated.jpg"
    truncated.parent.mkdir()
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    proc = run_cli(
        env, "ingest", str(good), str(truncated), "--wait", "--timeout", "120", check=False
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("failed"))
    assert str(truncated) in line and "truncated" in line

    # no worker at all: it ends after --timeout seconds without progress, naming what waits
    lonely = write_png(tmp_path / "later" / "lonely.png", (9, 9, 9))
    started = time.monotonic()
    proc = run_cli(
        env,
        "ingest",
        str(lonely),
        "--wait",
        "--no-process",
        "--timeout",
        "2",
        "--json",
        check=False,
    )
    assert time.monotonic() - started < 60
    outcome = json.loads(proc.stdout)
    assert proc.returncode == 1 and outcome["pending"] == 1
    (result,) = outcome["results"]
    assert result["status"] == "pending" and "worker" in result["reason"]


def test_wait_sees_a_replaced_version_and_a_stopped_worker(
    services: Services, tmp_path: Path
) -> None:
    pic = write_png(tmp_path / "a" / "pic.png", (255, 0, 0))
    (old,), _ = upload_paths(services, [pic])
    pic.write_bytes(png((0, 255, 0)))
    (new,), _ = upload_paths(services, [pic], overwrite=True)
    assert (new.key, new.action) == (old.key, "overwritten")
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    started = time.monotonic()
    first, second = wait_for(services, [old, new], timeout=60)
    assert time.monotonic() - started < 30
    assert (first.status, second.status) == ("replaced", "indexed")
    assert "replaced" in first.reason

    later = write_png(tmp_path / "b" / "later.png", (0, 0, 255))
    (pending,), _ = upload_paths(services, [later])
    (outcome,) = wait_for(services, [pending], timeout=60, worker_alive=lambda: False)
    assert outcome.status == "pending" and "worker in this process stopped" in outcome.reason


def _heic(image: Image.Image) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    image.save(buf, "HEIF", quality=90)
    return buf.getvalue()


def _avif(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "AVIF", quality=90)
    return buf.getvalue()


def test_heic_and_avif_photos_are_recognised(
    tmp_path: Path, env: dict[str, str], photo_dir: Path
) -> None:
    cat = Image.open(photo_dir / "chelsea.jpg").convert("RGB")
    folder = tmp_path / "phone"
    folder.mkdir()
    (folder / "cat.heic").write_bytes(_heic(cat))
    (folder / "cat.avif").write_bytes(_avif(cat))
    outcome = cli_json(env, "ingest", str(folder), "--wait", "--timeout", "120")
    assert outcome["indexed"] == 2, outcome
    for name, content_type in (("cat.heic", "image/heic"), ("cat.avif", "image/avif")):
        shown = cli_json(env, "show", f"phone/{name}")
        assert shown["content_type"] == content_type
        assert (shown["width"], shown["height"]) == cat.size
        names = {lb["label"].lower() for lb in shown["labels"]} | {
            p.lower() for lb in shown["labels"] for p in lb["parents"]
        }
        assert "cat" in names, shown["labels"]


def test_heic_and_avif_uploads_are_accepted_and_thumbnailed(services: Services) -> None:
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    picture = Image.new("RGB", (96, 64), (200, 30, 30))
    ids = []
    for name, data in (("p.heic", _heic(picture)), ("p.avif", _avif(picture))):
        answer = client.post("/api/images", files={"file": (name, data, "image/heic")})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    for doc_id in ids:
        doc = client.get(f"/api/images/{doc_id}").json()
        assert (doc["width"], doc["height"], doc["labels"][0]["label"]) == (96, 64, "red")
        hit = client.get("/api/search", params={"q": doc["title"]}).json()["hits"][0]
        thumb = client.get(hit["thumbnail"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_non_images_never_reach_the_bucket_from_the_cli(
    tmp_path: Path, env: dict[str, str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n")
    disguised = tmp_path / "album" / "holiday.jpg"
    disguised.parent.mkdir()
    disguised.write_text("not really a photo\n")
    photo = write_png(tmp_path / "album" / "real.png", (1, 2, 3))

    proc = run_cli(env, "ingest", str(notes), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"refused {notes}: not an image (looks like text)" in proc.stderr
    assert stored_files(tmp_path / "data") == []
    assert cli_json(env, "status")["queue"]["visible"] == 0

    proc = run_cli(env, "ingest", str(tmp_path / "album"), "--json", check=False)
    outcome: dict[str, Any] = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert [u["path"] for u in outcome["uploaded"]] == [str(photo)]
    assert [r["path"] for r in outcome["refused"]] == [str(disguised)]
    assert stored_files(tmp_path / "data") == ["album/real.png"]


def test_non_images_never_reach_the_bucket_from_the_api(services: Services) -> None:
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    refused = client.post(
        "/api/images", files={"file": ("notes.jpg", b"dear diary\n", "image/jpeg")}
    )
    assert refused.status_code == 415
    assert "looks like text" in refused.json()["detail"]
    assert list(services.store.list()) == [] and services.queue.stats().visible == 0


def test_non_images_never_reach_the_bucket_from_a_watched_folder(
    services: Services, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    write_png(inbox / "photo.png", (5, 5, 5))
    (inbox / "readme.jpg").write_text("this folder holds photos\n")
    watcher = FolderWatcher(services, inbox)
    assert watcher.scan() == 1
    assert [info.key for info in services.store.list()] == ["inbox/photo.png"]
    assert services.queue.stats().visible == 1


def test_upload_status_says_indexed_failed_or_replaced(services: Services, photo_dir: Path) -> None:
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    photo = (photo_dir / "puppy.jpg").read_bytes()
    answers = [
        client.post("/api/images", files={"file": ("IMG_0001.JPG", data, "image/jpeg")}).json()
        for data in (photo, photo[: len(photo) // 3])
    ]
    good, broken = answers
    assert good["key"] != broken["key"]  # the same name twice: both kept
    queued = client.get(good["status_url"]).json()
    assert (queued["status"], queued["id"]) == ("pending", good["id"])

    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    indexed = client.get(good["status_url"]).json()
    assert (indexed["status"], indexed["reason"]) == ("indexed", "")
    failed = client.get(broken["status_url"]).json()
    assert failed["status"] == "failed" and "truncated" in failed["reason"]
    assert client.get(f"/api/images/{good['id']}/content").content == photo

    # the key written again with other bytes before the worker came: never to be indexed
    third = client.post("/api/images", files={"file": ("x.png", png((9, 9, 9)), "image/png")})
    services.store.put(third.json()["key"], png((1, 1, 1)), "image/png")
    replaced = client.get(third.json()["status_url"]).json()
    assert replaced["status"] == "replaced" and "replaced" in replaced["reason"]

    params = {"key": "uploads/nothing/here.jpg", "etag": good["etag"]}
    assert client.get("/api/uploads/status", params=params).status_code == 404
    params["key"] = "../etc/passwd"
    assert client.get("/api/uploads/status", params=params).status_code == 400


def test_unchanged_bytes_whose_event_was_lost_are_queued_again(
    services: Services, tmp_path: Path
) -> None:
    pic = write_png(tmp_path / "a" / "pic.png", (255, 0, 0))
    upload_paths(services, [pic])
    lost = services.queue.receive(10)  # the event is lost: the index never hears of it
    services.queue.delete([m.receipt for m in lost])
    (again,), _ = upload_paths(services, [pic])
    assert again.action == "unchanged" and services.queue.stats().visible == 1
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    assert services.index.get(again.doc_id) is not None
    (third,), _ = upload_paths(services, [pic])  # indexed now: a true no-op
    assert third.action == "unchanged" and services.queue.stats().visible == 0
