"""`imagedex reprocess` says what to run: whichever worker takes the work (a running `imagedex up`
with other settings included) runs exactly the analyzers asked for, or refuses the work with a
reason; `ingested_at` stays, `analyzed_at` records the new analysis."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx

from cli_helpers import cli_json, free_port, imagedex_env, start_up
from conftest import ColourRecognizer, png
from imagedex.documents import document_id
from imagedex.ingest.events import reprocess_notification
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.recognition.faces import FaceAnalyzer
from imagedex.services import Services
from services import wait_http


def _reprocess_event(services: Services, key: str, analyzers: dict[str, str]) -> None:
    doc = services.index.get(document_id(services.store.bucket, key))
    assert doc is not None
    body = reprocess_notification(doc.bucket, doc.key, doc.size, doc.etag, analyzers)
    services.queue.send(json.dumps(body))


def test_a_worker_runs_the_analyzers_a_reprocess_asks_for(
    services: Services, photo_dir: Path
) -> None:
    upload_bytes(services, "astronaut.jpg", (photo_dir / "astronaut.jpg").read_bytes())
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    first = services.index.get(document_id("images", "astronaut.jpg"))
    assert first is not None and first.analyzed_with == {"test-colour": "1"}
    assert first.analyzed_at == first.ingested_at != ""

    # asked for an analyzer this worker's settings do not enable: it is built and run
    _reprocess_event(services, "astronaut.jpg", {"test-colour": "1", "faces": FaceAnalyzer.version})
    time.sleep(0.01)  # analyzed_at has millisecond precision
    stats = Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    assert (stats.indexed, stats.dead_lettered) == (1, 0)
    again = services.index.get(document_id("images", "astronaut.jpg"))
    assert again is not None
    assert again.analyzed_with == {"test-colour": "1", "faces": FaceAnalyzer.version}
    assert len(again.faces) == 1
    assert again.ingested_at == first.ingested_at  # the same object keeps its place in time
    assert again.analyzed_at > first.analyzed_at

    # asked for only some of the worker's own analyzers: the others are not run
    _reprocess_event(services, "astronaut.jpg", {"faces": FaceAnalyzer.version})
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    only = services.index.get(document_id("images", "astronaut.jpg"))
    assert only is not None and only.analyzed_with == {"faces": FaceAnalyzer.version}
    assert "colour" not in {t for label in only.labels for t in label.terms()}
    assert len(only.faces) == 1


def test_a_worker_refuses_work_it_cannot_do_and_says_why(services: Services) -> None:
    upload_bytes(services, "red.png", png((255, 0, 0)))
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    before = services.index.get(document_id("images", "red.png"))
    assert before is not None
    _reprocess_event(services, "red.png", {"test-colour": "2", "no-such-analyzer": "1"})
    stats = Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    assert stats.indexed == 0 and stats.dead_lettered == 1
    [dead] = services.queue.dead_letters()
    assert "UnsupportedWorkError" in dead.error
    assert "test-colour version 2 (this worker has 1)" in dead.error
    assert "no-such-analyzer (no such analyzer here)" in dead.error
    assert services.index.get(document_id("images", "red.png")) == before  # nothing redone


def test_reprocess_beside_a_running_up_with_other_settings(photo_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for copy in range(2):
        for photo in sorted(photo_dir.glob("*.jpg")):
            shutil.copy(photo, folder / f"{copy}-{photo.name}")
    count = len(list(folder.iterdir()))
    port = free_port()
    served = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_RECOGNIZERS="imagenet",
        IMAGEDEX_SEMANTIC="false",
        IMAGEDEX_BATCH_SIZE="2",
        IMAGEDEX_SCHEDULER="false",
    )
    server = start_up(served, port, output=(tmp_path / "up.log").open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", process=server)
        assert cli_json(served, "ingest", str(folder), "--wait")["indexed"] == count
        before = {
            hit["id"]: hit
            for hit in httpx.get(base + "/api/search", params={"limit": 100}).json()["hits"]
        }
        assert len(before) == count
        time.sleep(0.01)
        richer = {**served, "IMAGEDEX_RECOGNIZERS": "imagenet,faces"}
        result = cli_json(richer, "reprocess", "--analyzer", "faces")
        assert result["queued"] == count and result["dead_lettered"] == 0
        # the running server's worker took part of the work: the case this test is about
        assert result["processed"] < count, (result, (tmp_path / "up.log").read_text())
        hits = httpx.get(base + "/api/search", params={"limit": 100}).json()["hits"]
        for hit in hits:
            shown = httpx.get(f"{base}/api/images/{hit['id']}").json()
            assert set(shown["analyzed_with"]) == {"imagenet", "faces"}, shown["title"]
            assert shown["ingested_at"] == before[hit["id"]]["ingested_at"]
            assert shown["analyzed_at"] > before[hit["id"]]["analyzed_at"]
            assert hit["analyzed_at"] == shown["analyzed_at"]  # search hits carry it too
        astronauts = [h for h in hits if h["title"].endswith("astronaut.jpg")]
        for hit in astronauts:
            assert len(httpx.get(f"{base}/api/images/{hit['id']}").json()["faces"]) == 1
    finally:
        server.terminate()
        server.wait(timeout=30)
