"""Helpers shared by every benchmark script: timing, percentiles, machine facts, and the
section writer for docs/benchmarks.md (each script owns one `<!-- bench:NAME -->` block)."""

from __future__ import annotations

import datetime as dt
import fcntl
import gc
import os
import platform
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

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
