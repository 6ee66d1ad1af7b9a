"""Issue 14, item 1: thumbnails of 40 MP images that are small on disk, requested all at once from
a real `imagedex up`, keep the server process under 1.5 GB (its peak RSS read from /proc)."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from cli_helpers import free_port, imagedex_env, run_cli, start_up
from services import wait_http

SIDE = 6320  # 39.9 MP, just under the default max_pixels
SIZES = (160, 320, 640, 1280)
LIMIT = 1.5 * 1024**3


def rgba_png() -> bytes:
    """~170 KB on disk, 160 MB as Pillow holds it."""
    buffer = io.BytesIO()
    Image.new("RGBA", (SIDE, SIDE), (40, 120, 200, 128)).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def float_tiff() -> bytes:
    """~330 KB on disk (deflate), 160 MB decoded, more again on the way to 8-bit RGB."""
    values = np.zeros((SIDE, SIDE), dtype=np.float32)
    values[:, : SIDE // 2] = 0.25
    values[::97, :] = 0.75
    buffer = io.BytesIO()
    Image.fromarray(values, "F").save(buffer, "TIFF", compression="tiff_adobe_deflate")
    return buffer.getvalue()


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from the current RSS


def fetch(base: str, path: str) -> httpx.Response:
    return httpx.get(base + path, timeout=120)


def test_eight_concurrent_thumbnails_of_40_megapixel_images_stay_under_1_5_gb(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "huge"
    folder.mkdir()
    (folder / "alpha.png").write_bytes(rgba_png())
    (folder / "float.tif").write_bytes(float_tiff())
    env = imagedex_env(tmp_path / "data")
    port = free_port()
    server = start_up(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", timeout=120, process=server)
        run_cli(env, "ingest", str(folder), "--wait", "--no-process")  # up indexes them
        hits = httpx.get(base + "/api/search", params={"limit": 10}, timeout=30).json()["hits"]
        assert sorted(h["key"] for h in hits) == ["huge/alpha.png", "huge/float.tif"]
        paths = [f"/api/images/{hit['id']}/thumbnail?size={size}" for hit in hits for size in SIZES]
        time.sleep(1)  # the worker's batch is done; settle before measuring
        reset_peak_rss(server.pid)
        with ThreadPoolExecutor(len(paths)) as pool:
            answers = list(pool.map(lambda p: fetch(base, p), paths))
        peak = peak_rss(server.pid)
        # under load a request may be told to come back: then it must say when, and succeed then
        for path, answer in zip(paths, answers, strict=True):
            if answer.status_code == 503:
                assert int(answer.headers["Retry-After"]) >= 1
                answer = fetch(base, path)
            assert answer.status_code == 200, (path, answer.text)
            size = int(path.rsplit("=", 1)[1])
            assert max(Image.open(io.BytesIO(answer.content)).size) == size
        assert server.poll() is None
        assert peak < LIMIT, f"imagedex up peaked at {peak / 2**20:.0f} MiB"
    finally:
        server.terminate()
        server.wait(30)
