"""Hostile images (issue 14): scan bombs, lying or cut JPEG headers, and the process-wide budget
for decoded pixels that thumbnails and the worker share."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cli_helpers import cli_json, imagedex_env, run_cli
from imagedex.api import create_app
from imagedex.documents import ImageDocument, document_id
from imagedex.errors import ImageDecodeError
from imagedex.ingest import pixel_budget
from imagedex.ingest.imaging import decode_image
from imagedex.ingest.pixel_budget import DecodeBusyError, PixelBudget
from imagedex.services import Services

MIB = 1024 * 1024


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment of a JPEG; a scan's end includes its entropy data."""
    segments, pos = [], 2
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            segments.append((marker, pos, pos + 2))
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if marker == 0xDA:
            found = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, end)
            assert found is not None
            end = found.start()
        segments.append((marker, pos, end))
        pos = end
    return segments


def scan_bomb(side: int, repeats: int) -> bytes:
    """A plain grey progressive JPEG whose last AC scan is repeated `repeats` times: small on
    disk (each repeat is a few EOB runs), one pass over every block per repeat to decode."""
    data = encode(Image.new("L", (side, side), 128), "JPEG", progressive=True)
    segments = jpeg_segments(data)
    _, start, end = [s for s in segments if s[0] == 0xDA][-1]
    eoi = segments[-1][1]
    return data[:eoi] + data[start:end] * repeats + data[eoi:]


def with_frame_size(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its frame header claiming another size."""
    for marker, start, _ in jpeg_segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            return data[: start + 5] + struct.pack(">HH", height, width) + data[start + 9 :]
    raise AssertionError("no frame header")


def noise_jpeg(width: int, height: int, **options: object) -> bytes:
    pixels = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG", quality=60, **options)


# -- JPEG structure -------------------------------------------------------------------------------


def test_a_scan_bomb_is_refused_before_decoding() -> None:
    bomb = scan_bomb(2048, 500)  # before: decoded for seconds, every scan a full pass
    started = time.monotonic()
    with pytest.raises(ImageDecodeError, match=r"more than 100 scans"):
        decode_image(bomb, draft_size=(320, 320))
    assert time.monotonic() - started < 1.0
    # a real progressive JPEG (10 scans) still decodes
    decoded = decode_image(noise_jpeg(300, 200, progressive=True))
    assert (decoded.width, decoded.height) == (300, 200)


def test_a_jpeg_header_that_lies_about_its_size_is_refused_small_plain_images_are_not() -> None:
    small = noise_jpeg(32, 32)
    liar = with_frame_size(small, 6320, 6320)
    assert len(liar) < 2048
    with pytest.raises(ImageDecodeError, match=r"6320×6320 pixels need at least .* the file holds"):
        decode_image(liar, draft_size=(320, 320))
    # legitimately tiny for their size: one colour compresses to almost nothing
    plain = Image.new("RGB", (6000, 6000), (30, 90, 200))
    for data in (
        encode(plain, "JPEG", optimize=True),  # 1 bit DC + 1 bit end-of-block per block
        encode(plain, "JPEG", progressive=True, optimize=True),
        encode(plain, "PNG"),
    ):
        decoded = decode_image(data, draft_size=(320, 320))
        assert (decoded.width, decoded.height) == (6000, 6000)


def test_a_cut_jpeg_closed_with_an_end_marker_is_refused_when_restart_markers_show_it() -> None:
    whole = noise_jpeg(800, 600, restart_marker_rows=1)
    assert decode_image(whole).width == 800
    cut = whole[: len(whole) // 2] + b"\xff\xd9"  # libjpeg fills the missing half in silently
    with pytest.raises(ImageDecodeError, match=r"truncated: scan 1 ends after \d+ of its 38"):
        decode_image(cut)


def test_the_worker_dead_letters_a_scan_bomb_and_a_liar_and_indexes_the_six_photos(
    photo_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    photos = sorted(photo_dir.glob("*.jpg"))[:6]
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    (folder / "bomb.jpg").write_bytes(scan_bomb(2048, 2000))
    (folder / "liar.jpg").write_bytes(with_frame_size(noise_jpeg(32, 32), 6320, 6320))
    env = imagedex_env(tmp_path / "data")
    started = time.monotonic()
    proc = run_cli(env, "ingest", str(folder), "--wait", "--json", check=False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr  # some files failed
    status = {Path(r["path"]).name: r for r in json.loads(proc.stdout)["results"]}
    assert [status[p.name]["status"] for p in photos] == ["indexed"] * 6
    assert status["bomb.jpg"]["status"] == "failed"
    assert "more than 100 scans" in status["bomb.jpg"]["reason"]
    assert status["liar.jpg"]["status"] == "failed"
    assert "header lies" in status["liar.jpg"]["reason"]
    dead = cli_json(env, "dlq", "list")
    reasons = {key: m["error"] for m in dead["messages"] for key in m["keys"]}
    assert set(reasons) == {"batch/bomb.jpg", "batch/liar.jpg"}, reasons
    assert "scan bomb" in reasons["batch/bomb.jpg"]
    # the bomb costs a marker walk, not minutes of decoding (model loading dominates this)
    assert elapsed < 60


# -- the pixel budget -----------------------------------------------------------------------------


def test_the_budget_waits_in_order_times_out_and_runs_an_oversized_decode_alone() -> None:
    budget = PixelBudget(100)
    order: list[str] = []
    first = budget.reserve(60, timeout=1)
    assert first.__enter__() == 60

    def later(name: str, nbytes: int) -> None:
        with budget.reserve(nbytes, timeout=5):
            order.append(name)

    big = threading.Thread(target=later, args=("big", 70))
    big.start()
    time.sleep(0.2)
    small = threading.Thread(target=later, args=("small", 10))  # fits, but queues behind "big"
    small.start()
    time.sleep(0.2)
    assert order == [] and budget.used == 60
    with (
        pytest.raises(DecodeBusyError, match="decode_memory_mb") as busy,
        budget.reserve(1, timeout=0.2),
    ):
        pass
    assert busy.value.retry_after >= 1
    first.__exit__(None, None, None)
    big.join(5)
    small.join(5)
    assert order == ["big", "small"]
    with budget.reserve(10**12, timeout=0) as held:  # more than all of it: cut to all of it
        assert held == 100
    assert budget.used == 0


def test_a_decode_waits_for_the_budget_and_gives_up_with_busy() -> None:
    budget = PixelBudget(64 * MIB)
    photo = encode(Image.new("RGBA", (3000, 3000), (10, 20, 30, 40)), "PNG")  # needs ~140 MiB
    holder = budget.reserve(1, timeout=0)
    holder.__enter__()
    with pytest.raises(DecodeBusyError):
        decode_image(photo, budget=budget, budget_wait=0.3)
    holder.__exit__(None, None, None)
    done: list[int] = []

    def decode() -> None:
        done.append(decode_image(photo, budget=budget, budget_wait=5).width)

    with budget.reserve(64 * MIB, timeout=0):
        worker = threading.Thread(target=decode)
        worker.start()
        time.sleep(0.3)
        assert done == []  # waiting while the budget is taken
    worker.join(10)
    assert done == [3000] and budget.used == 0


def _add(services: Services, key: str, data: bytes) -> ImageDocument:
    info = services.store.put(key, data, content_type="image/png")
    doc = ImageDocument(
        id=document_id(services.store.bucket, key),
        bucket=services.store.bucket,
        key=key,
        title=key,
        s3_location=services.store.location(key),
        etag=info.etag,
        size=info.size,
        content_type="image/png",
    )
    services.index.upsert([doc])
    return doc


def test_a_thumbnail_request_that_finds_no_room_gets_503_with_retry_after(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imagedex.thumbnails

    monkeypatch.setattr(imagedex.thumbnails, "BUDGET_WAIT", 0.3)
    doc = _add(services, "wide.png", encode(Image.new("RGB", (1200, 800), (200, 10, 10)), "PNG"))
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    budget = pixel_budget.process_budget()
    with budget.reserve(budget.capacity, timeout=5):
        busy = client.get(f"/api/images/{doc.id}/thumbnail", params={"size": 160})
    assert busy.status_code == 503
    assert int(busy.headers["Retry-After"]) >= 1
    assert "decode_memory_mb" in busy.json()["detail"]
    fine = client.get(f"/api/images/{doc.id}/thumbnail", params={"size": 160})
    assert fine.status_code == 200
    assert Image.open(io.BytesIO(fine.content)).size == (160, 107)


def test_the_setting_sizes_the_process_budget_for_every_process_that_opens_services(
    tmp_path: Path,
) -> None:
    # a standalone worker never serves a thumbnail: opening its services must apply the setting
    from imagedex.config import load_settings
    from imagedex.services import Services

    before = pixel_budget.process_budget().capacity
    try:
        settings = load_settings(environ={"IMAGEDEX_DECODE_MEMORY_MB": "64"}, data_dir=tmp_path)
        Services.from_settings(settings).close()
        assert pixel_budget.process_budget().capacity == 64 * 1024 * 1024
    finally:
        pixel_budget.process_budget().resize(before)
