"""A three-node OpenSearch cluster from deploy/opensearch.sh loses one node to `kill -9` while a
real worker indexes and searches run: nothing is lost, answers do not change, the cluster heals.
The node killed holds the primary and is the one imagedex talks to (the first of the nodes its
index URL lists), so the worker and the searches fail over to the others.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cli_helpers import cli_json, imagedex_env
from conftest import OPENSEARCH_SCRIPT, jpeg, start_opensearch, stop_opensearch
from imagedex.config import load_settings
from imagedex.documents import SearchQuery, utc_timestamp
from imagedex.index import open_index
from imagedex.index.base import SearchIndex
from services import start_process

#: the OpenSearch major the cluster runs (the script picks its newest supported release)
VERSION = "3"
STREAM = 60  # images the worker indexes while the node dies


def _health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_cluster/health", timeout=10).json()


def _wait_green(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (health := _health(url))["status"] != "green":
        assert time.monotonic() < deadline, f"not green after {timeout}s: {health}"
        time.sleep(0.5)


def _copies(url: str, alias: str) -> dict[str, str]:
    """prirep ("p"/"r") -> the node holding that copy of the index's one shard."""
    rows = httpx.get(f"{url}/_cat/shards/{alias}", params={"format": "json"}).json()
    return {row["prirep"]: row["node"] for row in rows if row["state"] == "STARTED"}


def _answers(index: SearchIndex, before: str) -> dict[str, Any]:
    """Label, label + confidence, text, newest-first and facet answers over the images
    ingested before `before` (the stream indexed later can never change them)."""
    queries = {
        "label": SearchQuery(labels=("cat",), date_to=before),
        "label_conf": SearchQuery(labels=("espresso",), min_confidence=30, date_to=before),
        "text": SearchQuery(text="chelsea", date_to=before),
        "newest": SearchQuery(sort="newest", limit=50, date_to=before),
    }
    out: dict[str, Any] = {}
    for name, query in queries.items():
        result = index.search(query)
        out[name] = (result.total, [doc.id for doc in result.documents])
    facets = index.facets(SearchQuery(date_to=before))
    out["facets"] = (facets.total, [(c.label, c.count) for c in facets.labels])
    return out


def _poll(check: Callable[[], bool], timeout: float, what: str, each: Callable[[], None]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        each()


@pytest.mark.timeout(600)
def test_three_nodes_one_killed_during_ingest_and_search(
    photo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEDEX_OPENSEARCH_HEAP", "384m")  # three JVMs on a small machine
    monkeypatch.setenv("IMAGEDEX_OPENSEARCH_HEAP_MIN", "384m")
    t0 = time.monotonic()

    def phase(what: str) -> None:  # shown when the test fails, and with -s
        print(f"{time.monotonic() - t0:6.1f} s  {what}", flush=True)

    cluster = tmp_path / "cluster"
    url = start_opensearch(cluster, nodes=3, version=VERSION)
    port = int(url.rsplit(":", 1)[1])
    alias = f"t-{uuid.uuid4().hex[:8]}"
    worker = None
    try:
        base = {"IMAGEDEX_RECOGNIZERS": "imagenet", "IMAGEDEX_BATCH_SIZE": "4"}
        phase("3 nodes up")
        env = imagedex_env(tmp_path / "data", IMAGEDEX_INDEX=f"opensearch+{url}/{alias}", **base)
        photo_set = tmp_path / "photos"  # a cat, an espresso and two without either
        photo_set.mkdir()
        for name in ("chelsea.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg"):
            (photo_set / name).write_bytes((photo_dir / name).read_bytes())
        first = cli_json(env, "ingest", str(photo_set), "--wait")  # creates the index (auto)
        assert first["failed"] == 0 and first["pending"] == 0
        photos = first["indexed"]
        assert photos == len(first["results"]) == 4
        phase(f"{photos} photos indexed")
        _wait_green(url, 60)  # the default replicas=auto gave the index a replica
        copies = _copies(url, alias)
        assert set(copies) == {"p", "r"} and copies["p"] != copies["r"], copies
        victim = int(copies["p"].removeprefix("node-"))  # the primary: its replica takes over
        # imagedex lists every node, the one to be killed first: it talks to that node until
        # it dies, then fails over; the test's own health checks ask a node that stays up
        others = sorted({0, 1, 2} - {victim - 1})
        client_url = f"http://127.0.0.1:{port + others[0]}"
        nodes = ",".join(f"127.0.0.1:{port + i}" for i in [victim - 1, *others])
        env["IMAGEDEX_INDEX"] = f"opensearch+http://{nodes}/{alias}"
        settings = load_settings(environ=env)
        index = open_index(settings.index, settings.data_dir, settings)
        before = utc_timestamp("now")
        baseline = _answers(index, before)
        assert baseline["label"][0] >= 1 and baseline["text"][0] == 1, baseline
        assert baseline["newest"][0] == photos == baseline["facets"][0]

        stream = tmp_path / "stream"
        stream.mkdir()
        rng = np.random.default_rng(7)
        for i in range(STREAM):
            pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            (stream / f"stream-{i:03d}.jpg").write_bytes(jpeg(pixels, 80))
        worker = start_process([sys.executable, "-m", "imagedex.cli.main", "worker"], env=env)
        uploaded = cli_json(env, "ingest", str(stream))["uploaded"]
        assert len(uploaded) == STREAM
        expected = photos + STREAM
        searches = 0

        def search_unchanged() -> None:
            nonlocal searches
            assert _answers(index, before) == baseline
            searches += 1

        _poll(
            lambda: index.count() >= photos + 8,
            120,
            "ingest began",
            search_unchanged,
        )
        pid = int((cluster / f"node-{victim}" / "node.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        at_kill = index.count()
        phase(f"node-{victim} (primary) killed at {at_kill} of {expected} documents")
        assert at_kill < expected, "the stream was indexed before the node died: more images"
        searches = 0
        _poll(
            lambda: _health(client_url)["number_of_nodes"] == 2, 60, "node left", search_unchanged
        )
        # the worker keeps indexing and every search answers as before while the node is down
        _poll(lambda: index.count() == expected, 180, "stream indexed", search_unchanged)
        assert worker.poll() is None, "the worker died"
        victim_url = f"http://127.0.0.1:{port + victim - 1}"
        assert index.client.base_url != victim_url  # type: ignore[attr-defined]
        search_unchanged()
        assert searches >= 3, "too few searches ran while the node was down"
        phase(f"stream indexed; {searches} search rounds while the node was down")
        status = cli_json(env, "status")
        assert status["queue"]["dead"] == 0 and status["queue"]["visible"] == 0, status

        restart = subprocess.run(
            [str(OPENSEARCH_SCRIPT), "start-node", str(victim), "--data", str(cluster)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert restart.returncode == 0, restart.stderr[-2000:]
        phase(f"node-{victim} restarted")
        _poll(lambda: _health(client_url)["status"] == "green", 120, "green", search_unchanged)
        phase("green")
        assert _health(client_url)["number_of_nodes"] == 3
        assert _answers(index, before) == baseline
        # every image searchable exactly once: each stream image by its own title
        everything = index.search(SearchQuery(sort="title", limit=1000))
        titles = [doc.title for doc in everything.documents]
        assert everything.total == expected == len(titles) == len(set(titles))
        assert sorted(t for t in titles if t.startswith("stream-")) == sorted(
            f"stream-{i:03d}.jpg" for i in range(STREAM)
        )
        for i in (0, STREAM // 2, STREAM - 1):
            found = index.search(SearchQuery(text=f"stream-{i:03d}"))
            assert [d.title for d in found.documents].count(f"stream-{i:03d}.jpg") == 1
        index.close()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        stop_opensearch(cluster)
