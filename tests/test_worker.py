import json
import threading
import time
from pathlib import Path

import numpy as np

from conftest import ColourRecognizer, png
from imagedex.documents import SearchQuery, document_id
from imagedex.ingest.events import make_notification
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.queue.sqlite import SqliteQueue
from imagedex.recognition.base import Analyzer
from imagedex.services import Services


def run_once(services: Services, recognizer: ColourRecognizer | None = None) -> Worker:
    worker = Worker(services, recognizers=[recognizer or ColourRecognizer()])
    worker.run(once=True)
    return worker


def test_indexes_uploads_and_empties_the_queue(services: Services) -> None:
    upload_bytes(services, "red.png", png((255, 0, 0)), title="A red square")
    upload_bytes(services, "dir/blue sky+1.png", png((0, 0, 255)))
    worker = run_once(services)
    assert worker.stats.indexed == 2
    stats = services.queue.stats()
    assert (stats.visible, stats.in_flight, stats.dead) == (0, 0, 0)
    red = services.index.get(document_id("images", "red.png"))
    assert red is not None
    assert red.title == "A red square" and red.labels[0].label == "red"
    assert (red.width, red.height, red.content_type) == (64, 64, "image/png")
    assert red.analyzed_with == {"test-colour": "1"}
    blue = services.index.search(SearchQuery(labels=("blue",))).documents
    assert [d.title for d in blue] == ["blue sky+1.png"]


def test_duplicate_events_index_once(services: Services) -> None:
    upload = upload_bytes(services, "g.png", png((0, 255, 0)))
    body = make_notification("created", "images", "g.png", upload.size, upload.etag)
    services.queue.send(json.dumps(body))  # a second delivery, as S3 multipart uploads do
    worker = run_once(services)
    assert services.index.count() == 1
    assert worker.stats.indexed + worker.stats.unchanged == 2
    assert services.index.top_labels(5)[0].count == 1


def test_bad_input_is_dead_lettered_with_reason_and_the_rest_indexed(services: Services) -> None:
    upload_bytes(services, "good.png", png((255, 0, 0)))
    upload_bytes(services, "empty.jpg", b"")
    upload_bytes(services, "text.jpg", b"hello, I am not a JPEG\n" * 20)
    upload_bytes(services, "truncated.png", png((0, 0, 255), 256)[:300])
    services.queue.send("{not json")
    services.queue.send(json.dumps(make_notification("created", "other-bucket", "x.jpg")))
    worker = run_once(services)
    assert services.index.count() == 1
    reasons = {d.body: d.error for d in services.queue.dead_letters()}
    assert len(reasons) == 5
    joined = "\n".join(reasons.values())
    assert "empty" in joined
    assert "EventParseError" in joined and "not JSON" in joined
    assert "other-bucket" in joined
    assert joined.count("ImageDecodeError") == 3
    assert worker.stats.dead_lettered == 5


def test_transient_failures_are_retried_then_succeed(services: Services) -> None:
    upload_bytes(services, "r.png", png((255, 0, 0)))
    recognizer = ColourRecognizer(fail_times=2)
    worker = run_once(services, recognizer)
    assert services.index.count() == 1
    assert worker.stats.retried == 2
    assert services.queue.stats().dead == 0


def test_persistent_failure_goes_to_dlq_after_max_receives(services: Services) -> None:
    upload_bytes(services, "r.png", png((255, 0, 0)))
    recognizer = ColourRecognizer(fail_times=99, error=RuntimeError("onnx exploded"))
    run_once(services, recognizer)
    (dead,) = services.queue.dead_letters()
    assert "onnx exploded" in dead.error
    assert dead.receive_count == services.settings.max_receive_count
    assert services.index.count() == 0
    # retrying from the DLQ once the cause is fixed indexes it
    assert services.queue.redrive() == 1
    run_once(services)
    assert services.index.count() == 1


def test_removed_event_deletes_from_index(services: Services) -> None:
    upload_bytes(services, "r.png", png((255, 0, 0)))
    run_once(services)
    assert services.index.count() == 1
    info = services.store.head("r.png")
    services.store.delete("r.png")
    services.queue.send(json.dumps(make_notification("removed", info.bucket, info.key)))
    run_once(services)
    assert services.index.count() == 0


def test_created_event_for_vanished_object_is_not_an_error(services: Services) -> None:
    upload_bytes(services, "gone.png", png((255, 0, 0)))
    services.store.delete("gone.png")
    worker = run_once(services)
    assert services.queue.stats().dead == 0
    assert worker.stats.messages == 1 and services.index.count() == 0


def test_reupload_with_new_content_replaces_document(services: Services, tmp_path: Path) -> None:
    upload_bytes(services, "x.png", png((255, 0, 0)))
    run_once(services)
    upload_bytes(services, "x.png", png((0, 255, 0)))
    run_once(services)
    (doc,) = services.index.search(SearchQuery()).documents
    assert [lb.label for lb in doc.labels] == ["green"]
    assert {c.label: c.count for c in services.index.top_labels(5)} == {"green": 1}


def test_reanalysis_keeps_ingested_at_and_a_new_version_gets_a_new_one(
    services: Services,
) -> None:
    upload = upload_bytes(services, "t.png", png((255, 0, 0)))
    run_once(services)
    first = services.index.get(document_id("images", "t.png"))
    assert first is not None and first.ingested_at
    time.sleep(0.01)
    again = make_notification("created", "images", "t.png", upload.size, upload.etag)
    again["Records"][0]["imagedexReprocess"] = True  # what `imagedex reprocess` sends
    services.queue.send(json.dumps(again))
    assert run_once(services).stats.indexed == 1
    redone = services.index.get(first.id)
    assert redone is not None and redone.ingested_at == first.ingested_at
    upload_bytes(services, "t.png", png((0, 0, 255)))  # a new version of the object
    run_once(services)
    replaced = services.index.get(first.id)
    assert replaced is not None and replaced.ingested_at > first.ingested_at
    assert replaced.labels[0].label == "blue"


def test_huge_batch_mixed_with_hostile_keys(services: Services) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    keys = [f"batch/{i} ü+%20.png" for i in range(20)]
    for i, key in enumerate(keys):
        upload_bytes(services, key, png(colours[i % 3], 32 + i))
    run_once(services)
    assert services.index.count() == 20
    found = {d.key for d in services.index.search(SearchQuery(limit=100)).documents}
    assert found == set(keys)
    assert np.isclose(sum(c.count for c in services.index.top_labels(10)), 20)


class PickyRecognizer(ColourRecognizer):
    """Fails on any batch that contains a green image."""

    def analyze(self, images):  # type: ignore[no-untyped-def]
        results = super().analyze(images)
        if any(r.labels[0].label == "green" for r in results):
            raise RuntimeError("cannot handle green")
        return results


def test_one_failing_image_does_not_fail_its_batch(services: Services) -> None:
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 5, 5)]):
        upload_bytes(services, f"{i}.png", png(colour))
    worker = run_once(services, PickyRecognizer())
    assert services.index.count() == 3
    (dead,) = services.queue.dead_letters()
    assert "cannot handle green" in dead.error and "1.png" in dead.body
    assert worker.stats.indexed == 3


class SlowRecognizer(ColourRecognizer):
    def analyze(self, images):  # type: ignore[no-untyped-def]
        time.sleep(3.5)
        return super().analyze(images)


def test_visibility_is_extended_while_a_slow_image_is_processed(services: Services) -> None:
    slow = Services.from_settings(services.settings.with_overrides(visibility_timeout=1.5))
    upload_bytes(slow, "slow.png", png((255, 0, 0)))
    worker = Worker(slow, recognizers=[SlowRecognizer()])
    thread = threading.Thread(target=worker.run, kwargs={"once": True})
    thread.start()
    other = SqliteQueue(slow.settings.data_dir / "queue.sqlite3")
    while other.stats().in_flight == 0:  # wait until the worker holds the message
        time.sleep(0.01)
    stolen = []
    while thread.is_alive():
        stolen += other.receive(max_messages=10, visibility_timeout=30)
        time.sleep(0.1)
    thread.join()
    assert stolen == [], "the message became visible to another worker mid-processing"
    assert worker.stats.indexed == 1 and worker.stats.retried == 0


class BrokenAnalyzer(Analyzer):
    name = "always-broken"
    version = "1"

    def analyze(self, images):  # type: ignore[no-untyped-def]
        raise RuntimeError("model file is corrupt")


def test_one_analyzer_failing_keeps_the_others_results(services: Services) -> None:
    upload_bytes(services, "r.png", png((255, 0, 0)))
    worker = Worker(services, recognizers=[ColourRecognizer(), BrokenAnalyzer()])
    worker.run(once=True)
    doc = services.index.get(document_id("images", "r.png"))
    assert doc is not None and [lb.label for lb in doc.labels] == ["red"]
    assert "model file is corrupt" in doc.errors["always-broken"]
    assert doc.analyzed_with == {"test-colour": "1"}  # so `reprocess` will retry the broken one
    assert services.queue.stats().dead == 0
