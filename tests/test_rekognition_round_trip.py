"""imagedex's own `rekognition` analyzer pointed at imagedex's /rekognition: a real `imagedex up`
indexes through the endpoint it serves, changed only by the SDK's endpoint setting."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from cli_helpers import cli_json, free_port, imagedex_env, run_cli, start_up


def test_the_rekognition_analyzer_indexes_through_imagedex(tmp_path: Path, photo_dir: Path) -> None:
    port = free_port()
    env = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_RECOGNIZERS="rekognition",
        IMAGEDEX_SEMANTIC="false",
        AWS_ENDPOINT_URL_REKOGNITION=f"http://127.0.0.1:{port}/rekognition",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
    )
    server = start_up(env, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz").raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and server.poll() is None, "up did not start"
                time.sleep(0.2)
        run_cli(env, "ingest", str(photo_dir / "chelsea.jpg"), "--wait", "--timeout", "120")
        hits = cli_json(env, "search", "--label", "cat")
        assert [hit["title"] for hit in hits["hits"]] == ["chelsea.jpg"]
        shown = cli_json(env, "show", "chelsea.jpg")
        assert "rekognition" in shown["analyzed_with"] and not shown["errors"]
        assert {"Animal", "Cat"} <= {label["label"] for label in shown["labels"]}
    finally:
        server.terminate()
        server.wait(timeout=30)
