"""Deleting images on S3 (moto in server mode) with OpenSearch or Elasticsearch (real nodes
from deploy/): the document, the S3 object and the cached thumbnails go; S3's own removed
events then find nothing to bring back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from cli_helpers import cli_json, imagedex_env, run_cli
from conftest import ColourRecognizer, png
from imagedex.api import create_app
from imagedex.config import load_settings
from imagedex.documents import document_id
from imagedex.ingest.worker import Worker
from imagedex.services import Services
from imagedex.thumbnails import thumbnail
from services import MotoServer

BUCKET = "delete-photos"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.mark.parametrize("flavor", ["opensearch", "elasticsearch"])
def test_delete_on_s3_and_a_search_engine(
    flavor: str,
    moto: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    moto.reset()
    for name, value in moto.aws_env().items():
        monkeypatch.setenv(name, value)
    from imagedex import aws as aws_module

    aws_module.client.cache_clear()
    alias = f"delete-{uuid.uuid4().hex[:8]}"
    env = imagedex_env(
        tmp_path / "data",
        IMAGEDEX_STORE=f"s3://{BUCKET}",
        IMAGEDEX_QUEUE="sqs://delete-events",
        IMAGEDEX_INDEX=f"{flavor}+{request.getfixturevalue(f'{flavor}_url')}/{alias}",
        **moto.aws_env(),
    )
    cli_json(env, "aws", "setup")
    s3 = boto3.session.Session().client("s3", endpoint_url=moto.url)
    for key, colour in (("a/red.png", (250, 0, 0)), ("b/blue.png", (0, 0, 250))):
        s3.put_object(Bucket=BUCKET, Key=key, Body=png(colour), ContentType="image/png")
    services = Services.from_settings(load_settings(environ=env))
    try:
        assert Worker(services, recognizers=[ColourRecognizer()]).run(once=True).indexed == 2
        red, blue = document_id(BUCKET, "a/red.png"), document_id(BUCKET, "b/blue.png")
        for doc_id in (red, blue):
            thumbnail(services, doc_id, 320)
        cached = tmp_path / "data" / "thumbnails"

        (deleted,) = json.loads(run_cli(env, "delete", "a/red.png", "--yes", "--json").stdout)[
            "deleted"
        ]
        assert (deleted["id"], deleted["document"], deleted["object"]) == (red, True, True)
        assert deleted["thumbnails"] == 1 and not list(cached.rglob(f"{red}-*"))
        with pytest.raises(ClientError):
            s3.head_object(Bucket=BUCKET, Key="a/red.png")
        assert services.index.get(red) is None and services.index.count() == 1

        client = TestClient(create_app(services), base_url="http://127.0.0.1")
        response = client.delete(f"/api/images/{blue}")
        assert response.status_code == 200 and response.json()["object"] is True
        assert client.get(f"/api/images/{blue}").status_code == 404
        assert client.delete(f"/api/images/{blue}").status_code == 404
        assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
        assert not list(cached.rglob(f"{blue}-*"))

        # S3 announced both deletions itself: the worker removes, never indexes
        stats = Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
        assert (stats.removed, stats.indexed, stats.dead_lettered) == (2, 0, 0)
        assert services.index.count() == 0
    finally:
        services.index.client.request("DELETE", f"/{alias}-v*")  # type: ignore[attr-defined]
        services.close()
