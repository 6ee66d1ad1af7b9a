"""Hostile images against a real `imagedex up` and worker (issue 14).

    python bench/bench_hostile.py            # all measurements, writes the docs section
    python bench/bench_hostile.py --quick    # one budget, docs untouched
    python bench/bench_hostile.py --budgets 256,512,2048

1. Memory: two 6320×6320 images that are small on disk (an RGBA PNG, a deflated float32 TIFF) are
   ingested into `imagedex up`; then their four thumbnail sizes are requested at once (8
   requests). Measured: the server's RSS before, its peak during (VmHWM from /proc, reset just
   before), the time until all 8 are served (a 503 is retried after its Retry-After), and how
   many were told to retry. Once per decode budget (`decode_memory_mb`).
2. Scan bomb: a progressive JPEG whose AC scan is repeated 30,000 times (the audit's file):
   how long decode_image takes to refuse it, against Pillow decoding 300 of those scans.
3. A folder of six photos, then the same six with the scan bomb and a JPEG whose header claims
   6320×6320 over 600 bytes: `imagedex ingest --wait` wall time for each (the six must not wait
   for the bomb). Results go to the `hostile` section of docs/benchmarks.md.
"""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

try:
    import common
except ImportError:  # pragma: no cover - run as `python -m bench.bench_hostile`
    from bench import common  # type: ignore[no-redef]

SIDE = 6320
SIZES = (160, 320, 640, 1280)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def huge_images() -> dict[str, bytes]:
    values = np.zeros((SIDE, SIDE), dtype=np.float32)
    values[:, : SIDE // 2] = 0.25
    values[::97, :] = 0.75
    return {
        "alpha.png": encode(
            Image.new("RGBA", (SIDE, SIDE), (40, 120, 200, 128)), "PNG", compress_level=9
        ),
        "float.tif": encode(Image.fromarray(values, "F"), "TIFF", compression="tiff_adobe_deflate"),
    }


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    out, pos = [], 2
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            out.append((marker, pos, pos + 2))
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if marker == 0xDA:
            found = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, end)
            end = found.start() if found else len(data)
        out.append((marker, pos, end))
        pos = end
    return out


def scan_bomb(side: int, repeats: int) -> bytes:
    data = encode(Image.new("L", (side, side), 128), "JPEG", progressive=True)
    segments = _segments(data)
    _, start, end = [s for s in segments if s[0] == 0xDA][-1]
    eoi = segments[-1][1]
    return data[:eoi] + data[start:end] * repeats + data[eoi:]


def liar() -> bytes:
    pixels = np.random.default_rng(7).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    data = encode(Image.fromarray(pixels), "JPEG", quality=40)
    for marker, start, _ in _segments(data):
        if marker == 0xC0:
            return data[: start + 5] + struct.pack(">HH", SIDE, SIDE) + data[start + 9 :]
    raise AssertionError("no frame header")


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEDEX_")}
    env.update({"IMAGEDEX_DATA_DIR": str(data_dir), "IMAGEDEX_POLL_INTERVAL": "0.1", **extra})
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagedex.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _rss(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def thumbnail_memory(budget_mb: int, images: dict[str, bytes]) -> list[str]:
    with common.scratch_dir() as tmp:
        folder = tmp / "huge"
        folder.mkdir()
        for name, data in images.items():
            (folder / name).write_bytes(data)
        env = _env(tmp / "data", IMAGEDEX_DECODE_MEMORY_MB=str(budget_mb))
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "imagedex.cli.main", "up", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    httpx.get(base + "/healthz", timeout=2)
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("imagedex up did not start") from None
                    time.sleep(0.2)
            if _cli(env, "ingest", str(folder), "--wait", "--no-process").returncode != 0:
                raise SystemExit("ingesting the 40 MP images failed")
            hits = httpx.get(base + "/api/search", params={"limit": 10}, timeout=30).json()["hits"]
            paths = [f"/api/images/{h['id']}/thumbnail?size={s}" for h in hits for s in SIZES]
            time.sleep(1)
            idle = _rss(server.pid, "VmRSS")
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")
            retried = 0

            def fetch(path: str) -> int:
                nonlocal retried
                while True:
                    answer = httpx.get(base + path, timeout=300)
                    if answer.status_code != 503:
                        return answer.status_code
                    retried += 1
                    time.sleep(float(answer.headers.get("Retry-After", "1")))

            started = time.monotonic()
            with ThreadPoolExecutor(len(paths)) as pool:
                codes = list(pool.map(fetch, paths))
            elapsed = time.monotonic() - started
            peak = _rss(server.pid, "VmHWM")
            after = _rss(server.pid, "VmRSS")
        finally:
            server.terminate()
            server.wait(30)
    ok = sum(code == 200 for code in codes)
    return [
        f"{budget_mb} MiB",
        common.fmt_bytes(idle),
        common.fmt_bytes(peak),
        common.fmt_bytes(after),
        f"{elapsed:.1f} s",
        f"{ok}/{len(codes)}",
        str(retried),
    ]


def scan_bomb_times() -> list[list[str]]:
    from imagedex.errors import ImageDecodeError
    from imagedex.ingest.imaging import decode_image

    bomb = scan_bomb(4096, 30_000)
    started = time.perf_counter()
    try:
        decode_image(bomb, draft_size=(320, 320))
        refused = "decoded (not refused)"
    except ImageDecodeError as exc:
        refused = str(exc).split(" (")[0]
    refuse_s = time.perf_counter() - started
    sample = scan_bomb(4096, 300)
    started = time.perf_counter()
    image = Image.open(io.BytesIO(sample))
    image.draft("RGB", (320, 320))
    image.load()
    pillow_s = time.perf_counter() - started
    lying = liar()
    started = time.perf_counter()
    try:
        decode_image(lying, draft_size=(320, 320))
        lie = "decoded (not refused)"
    except ImageDecodeError as exc:
        lie = str(exc)
    lie_s = time.perf_counter() - started
    return [
        [
            f"scan bomb, 30,000 scans, {common.fmt_bytes(len(bomb))}",
            f"{refuse_s * 1000:.1f} ms",
            f"Pillow alone: {pillow_s:.1f} s for 300 of its scans, "
            f"~{pillow_s * 100:.0f} s for all; {refused}",
        ],
        [
            f"JPEG claiming {SIDE}×{SIDE}, {len(lying)} bytes",
            f"{lie_s * 1000:.1f} ms",
            lie,
        ],
    ]


def batch_times(photos: list[tuple[str, bytes]]) -> list[list[str]]:
    rows = []
    for label, extra in (
        ("six photos", {}),
        ("six photos + scan bomb + lying header", {"bomb.jpg": scan_bomb(4096, 30_000)}),
    ):
        if extra:
            extra["liar.jpg"] = liar()
        with common.scratch_dir() as tmp:
            folder = tmp / "batch"
            folder.mkdir()
            for name, data in [*photos, *extra.items()]:
                (folder / name).write_bytes(data)
            env = _env(tmp / "data")
            _cli(env, "status")  # creates the data dir outside the timing
            started = time.monotonic()
            proc = _cli(env, "ingest", str(folder), "--wait", "--json")
            elapsed = time.monotonic() - started
            import json

            results = json.loads(proc.stdout)["results"]
            indexed = sum(r["status"] == "indexed" for r in results)
            failed = sorted(f"{Path(r['path']).name}" for r in results if r["status"] == "failed")
        rows.append([label, f"{elapsed:.1f} s", str(indexed), ", ".join(failed) or "-"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = common.arg_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="the default budget only, no docs")
    parser.add_argument(
        "--budgets", default="256,512,2048", help="decode_memory_mb values (MiB), comma-separated"
    )
    common.add_write_options(parser)
    args = parser.parse_args(argv)
    budgets = [512] if args.quick else [int(b) for b in args.budgets.split(",") if b.strip()]
    facts = common.machine_facts()

    common.log("building the 40 MP images ...")
    images = huge_images()
    memory_rows = []
    for budget in budgets:
        common.log(f"8 thumbnails at once, decode_memory_mb={budget} ...")
        memory_rows.append(thumbnail_memory(budget, images))
    common.log("scan bomb and lying header ...")
    refusal_rows = scan_bomb_times()
    common.log("six photos with and without hostile neighbours ...")
    photos = [(f"photo{i}.jpg", data) for i, (_, data) in enumerate(common.upload_photos(6))]
    batch_rows = batch_times(photos)

    sizes = ", ".join(f"{name} {common.fmt_bytes(len(data))}" for name, data in images.items())
    markdown = "\n\n".join(
        [
            "## Hostile images (`bench_hostile.py`)",
            common.machine_markdown(facts),
            f"Eight thumbnail requests at once (sizes {', '.join(map(str, SIZES))} of two "
            f"{SIDE}×{SIDE} images small on disk: {sizes}) to a real `imagedex up`. Before the "
            "decode budget the same requests took the server to 4.5 GB; the target is 1.5 GB.",
            common.md_table(
                [
                    "decode_memory_mb",
                    "RSS idle",
                    "RSS peak",
                    "RSS after",
                    "all 8 served in",
                    "served",
                    "503, retried",
                ],
                memory_rows,
            ),
            "Refusals, in decode_image before any pixel is decoded:",
            common.md_table(["input", "refused in", "detail"], refusal_rows),
            "`imagedex ingest --wait` of a folder (worker in the same run; six photos at upload "
            "size):",
            common.md_table(["folder", "wall time", "indexed", "dead-lettered"], batch_rows),
        ]
    )
    print(markdown)
    if common.should_write(args):
        common.publish("hostile", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
