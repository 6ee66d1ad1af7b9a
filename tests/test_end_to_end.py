"""The embedded system end to end, through the real CLI and HTTP API and the real model."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cli_helpers import cli_json, free_port, imagedex_env, run_cli, start_up


def hit_titles(result: dict[str, Any]) -> list[str]:
    return [h["title"] for h in result["hits"]]


@pytest.fixture(scope="module")
def indexed(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    env = imagedex_env(data_dir)
    outcome = cli_json(env, "ingest", str(photo_dir), "--wait")
    assert outcome["indexed"] == len(list(photo_dir.iterdir()))
    assert outcome["failed"] == 0 and outcome["pending"] == 0
    return env


def test_seed_query_images_showing_an_object(indexed: dict[str, str]) -> None:
    assert "chelsea.jpg" in hit_titles(cli_json(indexed, "search", "--label", "cat"))
    assert "puppy.jpg" in hit_titles(cli_json(indexed, "search", "--label", "dog"))
    assert "gold_fish.jpg" in hit_titles(cli_json(indexed, "search", "--label", "goldfish"))
    assert "chelsea.jpg" not in hit_titles(cli_json(indexed, "search", "--label", "dog"))
    coffee = hit_titles(
        cli_json(indexed, "search", "--label", "espresso", "--any", "--label", "cup")
    )
    assert "coffee.jpg" in coffee
    assert "chelsea.jpg" not in coffee


def test_seed_query_what_one_image_shows(indexed: dict[str, str]) -> None:
    shown = cli_json(indexed, "show", "chelsea.jpg")
    assert shown["title"] == "chelsea.jpg" and shown["s3_location"].startswith("file://")
    labels = shown["labels"]
    assert labels and all(0 < lb["confidence"] <= 100 for lb in labels)
    assert any("cat" in [lb["label"].lower(), *lb["parents"]] for lb in labels)
    assert (
        shown["description"].startswith(("A ", "An "))
        and labels[0]["label"] in shown["description"]
    )
    assert len(shown["phash"]) == 16
    by_id = cli_json(indexed, "show", shown["id"])
    assert by_id["id"] == shown["id"]


def test_seed_query_label_with_min_confidence(indexed: dict[str, str]) -> None:
    top = cli_json(indexed, "show", "coffee.jpg")["labels"][0]
    label, conf = top["label"], top["confidence"]
    below = cli_json(indexed, "search", "--label", label, "--min-confidence", str(conf - 0.5))
    assert "coffee.jpg" in hit_titles(below)
    above = cli_json(
        indexed, "search", "--label", label, "--min-confidence", str(min(conf + 0.5, 100))
    )
    assert "coffee.jpg" not in hit_titles(above)
    assert set(below["hits"][0]) >= {"id", "title", "bucket", "key", "labels"}
    # the local folder store's location is a path on the server: never in search results
    assert "s3_location" not in below["hits"][0]
    assert "file:" not in json.dumps(below)


def test_labels_counts(indexed: dict[str, str]) -> None:
    counts = cli_json(indexed, "labels", "--top", "100")["labels"]
    assert counts and all(c["count"] >= 1 for c in counts)
    assert counts == sorted(counts, key=lambda c: -c["count"])


def test_reingest_is_idempotent(indexed: dict[str, str], photo_dir: Path) -> None:
    before = cli_json(indexed, "status")["documents"]
    outcome = cli_json(indexed, "ingest", str(photo_dir / "chelsea.jpg"), "--wait")
    assert outcome["indexed"] == 1
    # uploaded as a single file its key differs from the folder upload: one more document
    assert cli_json(indexed, "status")["documents"] == before + 1
    cli_json(indexed, "ingest", str(photo_dir / "chelsea.jpg"), "--wait")
    assert cli_json(indexed, "status")["documents"] == before + 1


def _png_bomb(side: int = 30000) -> bytes:
    """A valid-looking 30000x30000 greyscale PNG whose IDAT inflates to 900 MB (never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        )

    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(200)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_bad_input_dead_lettered_with_reasons_rest_indexed(photo_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(photo_dir / "chelsea.jpg", folder / "cat 1+ü.jpg")  # awkward key, good image
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is a text file, not a JPEG\n" * 10)
    good = (photo_dir / "coffee.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "bomb.png").write_bytes(_png_bomb())
    (folder / "garbage.bmp").write_bytes(b"BM" + bytes(range(256)) * 4)
    env = imagedex_env(tmp_path / "data")
    proc = run_cli(env, "ingest", str(folder), "--wait", "--json", check=False)
    assert proc.returncode == 1, proc.stderr
    outcome = json.loads(proc.stdout)
    status = {Path(r["path"]).name: r for r in outcome["results"]}
    assert status["cat 1+ü.jpg"]["status"] == "indexed"
    for name in ("truncated.jpg", "bomb.png"):
        assert status[name]["status"] == "failed", name
        assert status[name]["reason"], name
    assert "pixel" in status["bomb.png"]["reason"].lower()
    # what is not an image at all is refused before it is stored
    for name in ("zero.jpg", "notes.jpg", "garbage.bmp"):
        assert status[name]["status"] == "refused", name
    assert "empty" in status["zero.jpg"]["reason"].lower()
    assert "looks like text" in status["notes.jpg"]["reason"]
    dead = cli_json(env, "dlq", "list")
    assert dead["total"] == 2
    assert {k for m in dead["messages"] for k in m["keys"]} == {
        f"mixed/{n}" for n in ("truncated.jpg", "bomb.png")
    }
    hits = cli_json(env, "search", "--label", "cat")
    assert [h["key"] for h in hits["hits"]] == ["mixed/cat 1+ü.jpg"]
    # retrying does not lose them: they come back to the DLQ with the same reasons
    assert cli_json(env, "dlq", "retry", "--all")["retried"] == 2
    run_cli(env, "worker", "--once")
    assert cli_json(env, "dlq", "list")["total"] == 2
    assert cli_json(env, "status")["documents"] == 1


def test_api_matches_cli_and_uploads_over_http(photo_dir: Path, tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data")
    port = free_port()
    server = start_up(env, port, output=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "imagedex up did not start"
            time.sleep(0.2)
        for name in ("chelsea.jpg", "coffee.jpg"):
            files = {"file": (name, (photo_dir / name).read_bytes(), "image/jpeg")}
            assert httpx.post(f"{base}/api/images", files=files).status_code == 202
        deadline = time.monotonic() + 120
        while httpx.get(f"{base}/healthz").json()["documents"] < 2:
            assert time.monotonic() < deadline, "uploads were not indexed"
            time.sleep(0.2)
        params = {"label": "cat", "min_confidence": "1"}
        over_http = httpx.get(f"{base}/api/search", params=params).json()
        from_cli = cli_json(env, "search", "--label", "cat", "--min-confidence", "1")
        assert over_http == from_cli
        assert hit_titles(over_http) == ["chelsea.jpg"]
        content = httpx.get(base + over_http["hits"][0]["url"])
        assert content.content == (photo_dir / "chelsea.jpg").read_bytes()
        assert httpx.get(f"{base}/api/labels").json() == cli_json(env, "labels", "--top", "50")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _count_documents(data_dir: Path) -> int:
    path = data_dir / "index.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=10) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM docs").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_crash_mid_batch_indexes_everything_exactly_once(photo_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    sources = sorted(photo_dir.iterdir())
    for i in range(48):
        img = Image.open(sources[i % len(sources)]).convert("RGB")
        img = img.rotate(i * 7, expand=True).resize((200 + i * 5, 160 + i * 3))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        (folder / f"img{i:02d}.jpg").write_bytes(buf.getvalue())
    env = imagedex_env(tmp_path / "data", IMAGEDEX_BATCH_SIZE="4", IMAGEDEX_VISIBILITY_TIMEOUT="3")
    run_cli(env, "ingest", str(folder))
    worker = subprocess.Popen(
        [sys.executable, "-m", "imagedex.cli.main", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while _count_documents(tmp_path / "data") < 8:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.01)
    finally:
        worker.kill()  # SIGKILL: no cleanup, messages in flight stay received
        worker.wait()
    mid = cli_json(env, "status")
    assert mid["documents"] < 48, "the worker finished before it could be killed"
    assert mid["queue"]["in_flight"] + mid["queue"]["visible"] > 0
    stats = cli_json(env, "worker", "--once")
    assert stats["dead_lettered"] == 0
    final = cli_json(env, "status")
    assert final["documents"] == 48
    assert final["queue"] == {"visible": 0, "in_flight": 0, "dead": 0}
    everything = cli_json(env, "search", "--limit", "100")
    assert sorted(h["key"] for h in everything["hits"]) == [
        f"many/img{i:02d}.jpg" for i in range(48)
    ]
    every_label = cli_json(env, "labels", "--top", "10000", "--parents")["labels"]
    label_total = sum(c["count"] for c in every_label)
    assert label_total == sum(len(h["labels"]) for h in everything["hits"])


def test_watched_folder_uploads_and_removes(photo_dir: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = imagedex_env(tmp_path / "data")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "imagedex.cli.main", "watch", str(inbox)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)
        shutil.copy(photo_dir / "chelsea.jpg", inbox / "new cat.jpg")
        (inbox / "readme.txt").write_text("ignored: not an image name")
        deadline = time.monotonic() + 30
        while cli_json(env, "status")["queue"]["visible"] < 1:
            assert time.monotonic() < deadline, "the watcher did not upload the new file"
            time.sleep(0.1)
        run_cli(env, "worker", "--once")
        assert hit_titles(cli_json(env, "search", "--label", "cat")) == ["new cat.jpg"]
        (inbox / "new cat.jpg").unlink()
        deadline = time.monotonic() + 30
        while cli_json(env, "status")["queue"]["visible"] < 1:
            assert time.monotonic() < deadline, "the watcher did not report the deletion"
            time.sleep(0.1)
        run_cli(env, "worker", "--once")
        assert cli_json(env, "status")["documents"] == 0
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_all_vision_analyzers_through_the_pipeline(photo_dir: Path, tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data", IMAGEDEX_RECOGNIZERS="imagenet,moderation,faces,people")
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("astronaut.jpg", "chelsea.jpg"):
        shutil.copy(photo_dir / name, folder / name)
    assert cli_json(env, "ingest", str(folder), "--wait")["indexed"] == 2
    astronaut = cli_json(env, "show", "astronaut.jpg")
    assert len(astronaut["faces"]) == 1 and "1 face" in astronaut["description"]
    assert set(astronaut["analyzed_with"]) == {
        "imagenet",
        "moderation",
        "faces",
        "people",
        "embedding-minilm",
    }
    assert any(lb["label"] == "Person" for lb in astronaut["labels"])
    assert astronaut["moderation"] == [] and astronaut["errors"] == {}
    cat = cli_json(env, "show", "chelsea.jpg")
    assert cat["faces"] == []
    assert cli_json(env, "search", "--label", "person")["hits"][0]["title"] == "astronaut.jpg"
    assert cli_json(env, "search", "--moderation", "safe")["total"] == 2
    assert cli_json(env, "search", "--moderation", "unsafe")["total"] == 0
    assert len(astronaut["embedding"]) == 384


def test_semantic_and_similar_image_search(indexed: dict[str, str]) -> None:
    kitty = cli_json(indexed, "search", "a kitten sleeping", "--semantic", "--limit", "3")
    assert kitty["hits"][0]["title"] == "chelsea.jpg"
    drink = cli_json(indexed, "search", "a hot drink in a mug", "--semantic", "--limit", "3")
    assert drink["hits"][0]["title"] == "coffee.jpg"
    puppy = cli_json(indexed, "show", "puppy.jpg")
    similar = cli_json(indexed, "search", "--like", puppy["id"], "--limit", "3")
    assert puppy["id"] not in [h["id"] for h in similar["hits"]]
    assert similar["total"] >= 1
    only_cats = cli_json(indexed, "search", "an animal", "--semantic", "--label", "cat")
    assert {h["title"] for h in only_cats["hits"]} == {"chelsea.jpg"}  # filters still apply


def test_reprocess_after_enabling_an_analyzer(photo_dir: Path, tmp_path: Path) -> None:
    env = imagedex_env(
        tmp_path / "data", IMAGEDEX_RECOGNIZERS="imagenet", IMAGEDEX_SEMANTIC="false"
    )
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("astronaut.jpg", "coffee.jpg"):
        shutil.copy(photo_dir / name, folder / name)
    cli_json(env, "ingest", str(folder), "--wait")
    before = cli_json(env, "show", "astronaut.jpg")
    assert before["faces"] == [] and set(before["analyzed_with"]) == {"imagenet"}
    # nothing to do while everything is current
    assert cli_json(env, "reprocess")["queued"] == 0
    richer = {**env, "IMAGEDEX_RECOGNIZERS": "imagenet,faces"}
    # the analyzer's former name (faces-haar) still selects it
    result = cli_json(richer, "reprocess", "--analyzer", "faces-haar")
    assert result == {"queued": 2, "processed": 2, "indexed": 2, "dead_lettered": 0}
    after = cli_json(richer, "show", "astronaut.jpg")
    assert len(after["faces"]) == 1 and "faces" in after["analyzed_with"]
    assert after["id"] == before["id"]
    assert after["ingested_at"] == before["ingested_at"]  # reprocessing keeps the timeline
    assert cli_json(richer, "reprocess")["queued"] == 0  # resumable: done ones are current
    assert cli_json(richer, "reprocess", "--all", "--label", "espresso")["indexed"] == 1
    assert cli_json(richer, "status")["documents"] == 2


def test_everyday_words_find_breeds(indexed: dict[str, str]) -> None:
    assert "puppy.jpg" in hit_titles(cli_json(indexed, "search", "--label", "puppy"))
    assert "chelsea.jpg" in hit_titles(cli_json(indexed, "search", "--label", "kitten"))
