"""A slow image is dead-lettered after `image_timeout` and holds none of the images received
with it; the worker backs off while the queue is down and starts careful after a crash."""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ColourRecognizer
from imagedex.documents import document_id
from imagedex.ingest.crashes import CrashJournal
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.services import Services


def huge_png(side: int = 6320) -> bytes:
    """A legitimate 40-megapixel RGBA PNG, under 1 MB on disk, that takes the better part of a
    second to decode (PNG has no reduced-size decode)."""
    pixels = np.zeros((side, side, 4), np.uint8)
    pixels[::3, :, 0] = 255
    pixels[..., 3] = 128
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def test_a_slow_image_delays_none_of_the_six_photos_beside_it(
    services: Services, photo_dir: Path
) -> None:
    limited = Services.from_settings(
        services.settings.with_overrides(image_timeout=0.3, batch_size=8, fetch_threads=2)
    )
    photos = sorted(photo_dir.glob("*.jpg"))[:6]
    upload_bytes(limited, "folder/slow.png", huge_png())
    for photo in photos:
        upload_bytes(limited, f"folder/{photo.name}", photo.read_bytes())
    ids = [document_id("images", f"folder/{p.name}") for p in photos]
    worker = Worker(limited, recognizers=[ColourRecognizer()])
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop}, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        while not all(limited.index.get(i) for i in ids) and time.monotonic() - started < 60:
            time.sleep(0.05)
        six_done = time.monotonic() - started
        while limited.queue.stats().dead == 0 and time.monotonic() - started < 60:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert six_done < 3.0, f"the six photos waited {six_done:.1f}s for the slow one"
    (letter,) = limited.queue.dead_letters()
    assert "folder/slow.png" in letter.body and letter.receive_count == 1
    assert "ImageTimeoutError" in letter.error and "image_timeout" in letter.error
    assert limited.index.get(document_id("images", "folder/slow.png")) is None
    assert limited.index.count() == 6


def test_after_a_crash_the_worker_takes_one_message_at_a_time(
    services: Services, photo_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the marker a worker killed with -9 leaves: its process (pid 2**22 + 1 exceeds pid_max) is gone
    folder = services.settings.data_dir / "workers"
    folder.mkdir(parents=True)
    dead = CrashJournal(services.settings.data_dir)
    (folder / f"{dead._host}-4194305-1").touch()
    for photo in sorted(photo_dir.glob("*.jpg"))[:3]:
        upload_bytes(services, photo.name, photo.read_bytes())
    sizes: list[int] = []

    class Counting(ColourRecognizer):
        def analyze_images(self, images):  # type: ignore[no-untyped-def]
            sizes.append(len(images))
            return super().analyze_images(images)

    with caplog.at_level(logging.WARNING, logger="imagedex.ingest.worker"):
        Worker(services, recognizers=[Counting()]).run(once=True)
    assert services.index.count() == 3
    assert sizes == [1, 1, 1], "a message that kills the worker would take its batch with it"
    assert "died while working" in caplog.text
    assert not list(folder.iterdir()), "the dead marker and this worker's own are gone"
    sizes.clear()
    for photo in sorted(photo_dir.glob("*.jpg"))[3:6]:
        upload_bytes(services, photo.name, photo.read_bytes())
    Worker(services, recognizers=[Counting()]).run(once=True)
    assert sizes == [3], "no crash since: batches again"
