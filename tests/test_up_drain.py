"""`imagedex up` drains on SIGTERM: it stops receiving, lets the batch in hand finish within
`drain_timeout`, releases what is still in flight, and exits 0; the real process, a real
plugin analyzer (installed through an entry point) that takes as long as the test asks."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from cli_helpers import free_port, imagedex_env, run_cli, start_up
from conftest import png
from imagedex.queue.sqlite import SqliteQueue

PLUGIN = """
import os, pathlib, time
from imagedex.recognition.base import Analysis, Analyzer

class Slow(Analyzer):
    name = "slow"
    version = "1"

    def analyze_images(self, images):
        pathlib.Path(os.environ["SLOW_STARTED"]).touch()
        time.sleep(float(os.environ["SLOW_SECONDS"]))
        return [Analysis() for _ in images]
"""

IMAGES = 3
VISIBILITY = 120  # far longer than any wait below: a message left hidden would fail the test


def _plugin(root: Path) -> Path:
    folder = root / "plugin"
    dist = folder / "slow_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (folder / "slow_plugin.py").write_text(textwrap.dedent(PLUGIN))
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[imagedex.analyzers]\nslow = slow_plugin:Slow\n")
    return folder


def _setup(tmp_path: Path, slow_seconds: float, drain: float) -> dict[str, str]:
    env = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_RECOGNIZERS="slow",
        IMAGEDEX_SEMANTIC="false",
        IMAGEDEX_VISIBILITY_TIMEOUT=str(VISIBILITY),
        IMAGEDEX_DRAIN_TIMEOUT=str(drain),
        IMAGEDEX_SCHEDULER="false",
        PYTHONPATH=str(_plugin(tmp_path)),
        SLOW_SECONDS=str(slow_seconds),
        SLOW_STARTED=str(tmp_path / "started"),
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(IMAGES):
        (photos / f"{i}.png").write_bytes(png((40 * i, 0, 255)))
    run_cli(env, "ingest", str(photos))
    return env


def _terminate_mid_batch(env: dict[str, str], tmp_path: Path) -> tuple[int, float]:
    """Start `up`, SIGTERM it once the batch is being analysed; its exit code and how long
    it took to exit."""
    up = start_up(env, free_port())
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists():
            assert up.poll() is None, "imagedex up exited before working"
            assert time.monotonic() < deadline, "the batch never started"
            time.sleep(0.05)
        signalled = time.monotonic()
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=60)
        return code, time.monotonic() - signalled
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def _queue(tmp_path: Path) -> tuple[int, int, int]:
    queue = SqliteQueue(tmp_path / "data" / "queue.sqlite3")
    try:
        stats = queue.stats()
        return stats.visible, stats.in_flight, stats.dead
    finally:
        queue.close()


def test_sigterm_releases_a_slow_batch_so_a_fresh_worker_takes_it_at_once(
    tmp_path: Path,
) -> None:
    env = _setup(tmp_path, slow_seconds=600, drain=1)
    code, took = _terminate_mid_batch(env, tmp_path)
    assert code == 0, "imagedex up did not exit cleanly on SIGTERM"
    assert took < 20, f"the drain took {took:.1f}s with drain_timeout=1"
    assert _queue(tmp_path) == (IMAGES, 0, 0), "in-flight messages were not released"
    fresh = {**env, "SLOW_SECONDS": "0"}
    started = time.monotonic()
    try:
        proc = run_cli(fresh, "worker", "--once", "--json", timeout=VISIBILITY / 2)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("the released messages stayed hidden from a fresh worker") from exc
    assert json.loads(proc.stdout)["indexed"] == IMAGES
    assert time.monotonic() - started < VISIBILITY / 2
    assert _queue(tmp_path) == (0, 0, 0)


def test_sigterm_lets_a_batch_that_fits_the_drain_timeout_finish(tmp_path: Path) -> None:
    env = _setup(tmp_path, slow_seconds=3, drain=60)
    code, took = _terminate_mid_batch(env, tmp_path)
    assert code == 0
    assert took < 50
    assert _queue(tmp_path) == (0, 0, 0), "the batch in hand was not finished and deleted"
    found = json.loads(run_cli(env, "status", "--json").stdout)
    assert found["documents"] == IMAGES, found
