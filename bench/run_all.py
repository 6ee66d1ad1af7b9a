"""Run every benchmark script in bench/ (each `bench_*.py`), one after the other.

    python bench/run_all.py                  # full runs; each script rewrites its docs section
    python bench/run_all.py --quick          # smoke runs (scripts leave docs/benchmarks.md alone)
    python bench/run_all.py --only pipeline  # just bench_pipeline.py

Scripts run sequentially, never in parallel: on a small machine they would skew each other's
timings. Output streams through; a summary with each script's duration and exit status ends the
run, and the exit status is non-zero when any script failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def scripts(only: Sequence[str] = ()) -> list[Path]:
    found = sorted(BENCH_DIR.glob("bench_*.py"))
    if not only:
        return found
    wanted = {name.removeprefix("bench_").removesuffix(".py") for name in only}
    chosen = [p for p in found if p.stem.removeprefix("bench_") in wanted]
    missing = wanted - {p.stem.removeprefix("bench_") for p in chosen}
    if missing:
        raise SystemExit(f"no such benchmark: {', '.join(sorted(missing))}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only bench_NAME.py (repeatable, or comma-separated)",
    )
    parser.add_argument("--list", action="store_true", help="list the scripts and exit")
    args = parser.parse_args(argv)
    only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    todo = scripts(only)
    if args.list:
        for path in todo:
            print(path.name)
        return 0
    summary: list[tuple[str, int, float]] = []
    for path in todo:
        command = [sys.executable, str(path), *(["--quick"] if args.quick else [])]
        print(f"== {path.name} {'--quick' if args.quick else ''}".rstrip(), flush=True)
        began = time.monotonic()
        code = subprocess.call(command, cwd=BENCH_DIR.parent)
        summary.append((path.name, code, time.monotonic() - began))
    print("\n== summary", flush=True)
    for name, code, seconds in summary:
        print(f"{name:28s} {'ok' if code == 0 else f'FAILED (exit {code})':18s} {seconds:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in summary) else 1


if __name__ == "__main__":
    raise SystemExit(main())
