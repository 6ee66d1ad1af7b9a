"""The OpenSearch backend through the real CLI, plus fault tests against real nodes."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli_helpers import cli_json, imagedex_env, run_cli
from conftest import OPENSEARCH_SCRIPT, start_opensearch, stop_opensearch
from imagedex.documents import ImageDocument
from imagedex.index import engine_dsl
from imagedex.index.engine import _engine_document
from services import start_process


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    alias = f"t-{uuid.uuid4().hex[:8]}"
    return imagedex_env(tmp_path / "data", IMAGEDEX_INDEX=f"opensearch+{url}/{alias}", **extra)


def _keys(result: dict[str, Any]) -> list[str]:
    return [h["key"] for h in result["hits"]]


def test_cli_answers_match_sqlite(opensearch_url: str, photo_dir: Path, tmp_path: Path) -> None:
    on_os = _env(tmp_path / "os", opensearch_url)
    on_sqlite = imagedex_env(tmp_path / "sqlite" / "data")
    for env in (on_os, on_sqlite):
        outcome = cli_json(env, "ingest", str(photo_dir), "--wait")
        assert outcome["failed"] == 0 and outcome["pending"] == 0
    for args in (
        ("search", "--label", "cat"),
        ("search", "--label", "dog"),
        ("search", "--label", "espresso", "--min-confidence", "50"),
        ("search", "--sort", "title", "--limit", "50"),
        ("labels", "--top", "20"),
    ):
        a, b = cli_json(on_os, *args), cli_json(on_sqlite, *args)
        if args[0] == "labels":
            assert a == b, args
            continue
        assert a["total"] == b["total"] and _keys(a) == _keys(b), args
        for hit_a, hit_b in zip(a["hits"], b["hits"], strict=True):
            assert hit_a["labels"] == hit_b["labels"]
            assert hit_a["id"] == hit_b["id"] and hit_a["key"] == hit_b["key"]
    shown = cli_json(on_os, "show", "chelsea.jpg")
    assert shown["title"] == "chelsea.jpg" and shown["labels"]
    assert "chelsea.jpg" in [
        h["title"] for h in cli_json(on_os, "search", "--label", "cat")["hits"]
    ]


def test_copy_between_backends_and_migrate(
    opensearch_url: str, photo_dir: Path, tmp_path: Path
) -> None:
    env = imagedex_env(tmp_path / "data")
    cli_json(env, "ingest", str(photo_dir), "--wait")
    target = f"opensearch+{opensearch_url}/copy-{uuid.uuid4().hex[:8]}"
    copied = cli_json(env, "index", "copy", "--from", "sqlite", "--to", target)
    assert copied["copied"] == copied["target_count"] == len(list(photo_dir.iterdir()))
    os_env = {**env, "IMAGEDEX_INDEX": target}
    assert _keys(cli_json(os_env, "search", "--label", "cat")) == _keys(
        cli_json(env, "search", "--label", "cat")
    )
    migrated = cli_json(os_env, "index", "migrate")
    # the copy made the current mapping's version; a migrate always moves on to a new one
    following = f"-v{engine_dsl.MAPPING_VERSION + 1}"
    assert migrated["documents"] == copied["copied"] and migrated["to"].endswith(following)
    alias = target.rsplit("/", 1)[1]
    aliases = httpx.get(f"{opensearch_url}/_alias/{alias}").json()
    assert list(aliases) == [f"{alias}{following}"]
    assert cli_json(os_env, "status")["documents"] == copied["copied"]
    # and back into a fresh SQLite file
    back = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    assert (
        cli_json(env, "index", "copy", "--from", target, "--to", back)["target_count"]
        == copied["copied"]
    )


def test_unreachable_engine_gives_a_clear_error(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data", IMAGEDEX_INDEX="opensearch+http://127.0.0.1:9/images")
    proc = run_cli(env, "search", "--label", "cat", check=False)
    assert proc.returncode != 0
    assert "unreachable" in proc.stderr and "127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_node_stopped_mid_ingest_loses_nothing(photo_dir: Path, tmp_path: Path) -> None:
    node_data = tmp_path / "node"
    url = start_opensearch(node_data)
    env = _env(tmp_path, url, IMAGEDEX_BATCH_SIZE="2", IMAGEDEX_RETRY_DELAY="1")
    try:
        run_cli(env, "ingest", str(photo_dir / "chelsea.jpg"), "--wait")  # creates the index
        worker = start_process([sys.executable, "-m", "imagedex.cli.main", "worker"], env=env)
        stop_opensearch(node_data)
        uploaded = cli_json(env, "ingest", str(photo_dir))["uploaded"]
        time.sleep(8)  # the worker meets a dead engine: it must keep messages, not drop them
        assert worker.poll() is None, "the worker died while the engine was down"
        stats = cli_json({**env, "IMAGEDEX_INDEX": "sqlite"}, "status")["queue"]
        assert stats["visible"] + stats["in_flight"] >= 1 and stats["dead"] == 0
        restart = subprocess.run(
            [
                str(OPENSEARCH_SCRIPT),
                "start",
                "--port",
                url.rsplit(":", 1)[1],
                "--data",
                str(node_data),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert restart.returncode == 0, restart.stderr[-2000:]
        deadline = time.monotonic() + 180
        while True:
            status = cli_json(env, "status")
            if status["documents"] == len(uploaded) + 1 and status["queue"]["visible"] == 0:
                break
            assert time.monotonic() < deadline, status
            time.sleep(1)
        assert status["queue"]["dead"] == 0
        worker.terminate()
        worker.wait(timeout=30)
    finally:
        stop_opensearch(node_data)


def _probe(flavor: str, url: str) -> Any:
    """An EngineIndex that only talks to the node (no index created)."""
    from imagedex.index.engine import EngineIndex
    from imagedex.index.engine_client import EngineClient

    index = EngineIndex.__new__(EngineIndex)
    index.client = EngineClient(url)
    index.flavor = flavor  # type: ignore[assignment]
    index.embedding_dim = 384
    index.visual_dim = 1280
    return index


@pytest.mark.parametrize(
    "backend", ["opensearch", "opensearch3", "elasticsearch", "elasticsearch9"]
)
def test_vector_field_mapping(backend: str, request: pytest.FixtureRequest) -> None:
    """The vector fields: k-NN `knn_vector` (Lucene HNSW, 7-bit `sq` encoder on 2.16+) on
    OpenSearch when the plugin is there (2.19 and 3.x alike), `dense_vector` on Elasticsearch
    (`int8_hnsw` on 8.12+, `bbq_hnsw` for these 384+ dimensions on 9.x)."""
    flavor = backend.rstrip("0123456789")
    index = _probe(flavor, request.getfixturevalue(f"{backend}_url"))
    field = index._detect_vector_field()
    visual = index._visual_vector_field()
    assert field is not None and visual is not None
    if flavor == "opensearch":
        assert field["type"] == "knn_vector" and field["method"]["engine"] == "lucene"
        assert visual == {
            "type": "knn_vector",
            "dimension": 1280,
            "method": {
                "name": "hnsw",
                "engine": "lucene",
                "space_type": "cosinesimil",
                "parameters": {"encoder": {"name": "sq", "parameters": {"bits": 7}}},
            },
        }
    else:
        quantised = {"type": "bbq_hnsw" if backend == "elasticsearch9" else "int8_hnsw"}
        assert field == {
            "type": "dense_vector",
            "dims": 384,
            "index": True,
            "similarity": "cosine",
            "index_options": quantised,
        }
        assert visual == {
            "type": "dense_vector",
            "dims": 1280,
            "index": True,
            "similarity": "cosine",
            "index_options": quantised,
        }


def put_old_document(
    url: str, alias: str, doc: ImageDocument, strip: Callable[[dict[str, Any]], object]
) -> None:
    """`doc` as an older imagedex wrote it: its engine body less what `strip` removes."""
    body = _engine_document(doc)
    strip(body)
    httpx.put(f"{url}/{alias}/_doc/{doc.id}?refresh=true", json=body).raise_for_status()


def versioned_index(url: str, alias: str, body: dict[str, Any]) -> None:
    """`alias` -> `alias-v1` made with `body` (settings and mappings), as another imagedex
    version or another tool left it."""
    httpx.put(f"{url}/{alias}-v1", json=body).raise_for_status()
    httpx.post(
        f"{url}/_aliases", json={"actions": [{"add": {"index": f"{alias}-v1", "alias": alias}}]}
    ).raise_for_status()


@pytest.mark.parametrize("flavor", ["opensearch", "elasticsearch"])
def test_an_index_from_before_visual_embeddings_gets_the_vector_field(
    flavor: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Opening an index made before `visual_embedding` existed maps it as a searchable vector
    in place (PUT _mapping, no reindex); its documents stay, new ones are found by their looks."""
    import dataclasses

    from conftest import make_document
    from imagedex.documents import SearchQuery
    from imagedex.index import engine_dsl, open_index

    url = request.getfixturevalue(f"{flavor}_url")
    alias = f"before-visual-{uuid.uuid4().hex[:6]}"
    text = _probe(flavor, url)._detect_vector_field()
    mappings = engine_dsl.mappings(text)
    del mappings["properties"]["visual_embedding"]  # the mapping imagedex made until now
    settings = engine_dsl.index_settings()
    if text["type"] == "knn_vector":
        settings["knn"] = True
    versioned_index(url, alias, {"settings": settings, "mappings": mappings})
    old = make_document("old.jpg", [("horse", 80.0, ())], ingested_at="2026-01-01T00:00:00Z")
    put_old_document(url, alias, old, lambda body: body.pop("visual_embedding"))

    index = open_index(f"{flavor}+{url}/{alias}", tmp_path)
    try:
        field = httpx.get(f"{url}/{alias}/_mapping/field/visual_embedding").json()
        (mapped,) = field.values()
        kind = mapped["mappings"]["visual_embedding"]["mapping"]["visual_embedding"]["type"]
        assert kind == ("knn_vector" if flavor == "opensearch" else "dense_vector")
        one, two = ([0.0] * 1280, [0.0] * 1280)
        one[0], two[0], two[1] = 1.0, 1.0, 0.5
        docs = [
            dataclasses.replace(
                make_document(key, ingested_at="2026-01-02T00:00:00Z"), visual_embedding=vector
            )
            for key, vector in (("new.jpg", one), ("renamed.jpg", two))
        ]
        index.upsert(docs)
        query = SearchQuery(vector=tuple(one), vector_field="visual_embedding")
        assert [d.key for d in index.search(query).documents] == ["new.jpg", "renamed.jpg"]
        assert index.get(old.id) is not None and index.count() == 3
    finally:
        index.client.request("DELETE", f"/{alias}-v*")  # type: ignore[attr-defined]
        index.close()


def test_mapping_conflict_is_a_clear_error(opensearch_url: str, tmp_path: Path) -> None:
    from imagedex.documents import ImageDocument, Label
    from imagedex.index import engine_dsl, open_index
    from imagedex.index.engine_client import EngineRequestError

    alias = f"conflict-{uuid.uuid4().hex[:6]}"
    # an index made by some other tool: imagedex's fields, but `labels` a plain keyword
    mappings = engine_dsl.mappings(None)
    mappings["properties"]["labels"] = {"type": "keyword"}
    versioned_index(
        opensearch_url, alias, {"settings": engine_dsl.index_settings(), "mappings": mappings}
    )
    index = open_index(f"opensearch+{opensearch_url}/{alias}", tmp_path)
    doc = ImageDocument(
        id="x1",
        bucket="b",
        key="k.jpg",
        title="k",
        s3_location="s3://b/k.jpg",
        ingested_at="2026-01-01T00:00:00Z",
        labels=[Label("dog", 90.0)],
    )
    with pytest.raises(
        EngineRequestError, match=r"1 of 1 documents rejected; first: \w*(mapper|parsing)"
    ):
        index.upsert([doc])
    # a mapping imagedex cannot extend in place: the advice is to migrate
    odd = f"odd-{uuid.uuid4().hex[:6]}"
    versioned_index(opensearch_url, odd, {"mappings": {"properties": {"title": {"type": "long"}}}})
    with pytest.raises(EngineRequestError, match="imagedex index migrate"):
        open_index(f"opensearch+{opensearch_url}/{odd}", tmp_path)
    plain = f"plain-{uuid.uuid4().hex[:6]}"
    httpx.put(f"{opensearch_url}/{plain}").raise_for_status()
    with pytest.raises(EngineRequestError, match="plain index, not an alias"):
        open_index(f"opensearch+{opensearch_url}/{plain}", tmp_path)


@pytest.mark.parametrize("flavor", ["opensearch", "elasticsearch"])
def test_an_index_from_before_leaf_labels_gets_the_field_and_counts_leaves(
    flavor: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Opening an index made before `labels.leaf` existed adds it in place; documents indexed
    before count every label (as they did), documents written since count leaf labels."""
    from conftest import make_document
    from imagedex.documents import Label
    from imagedex.index import engine_dsl, open_index

    url = request.getfixturevalue(f"{flavor}_url")
    alias = f"before-leaf-{uuid.uuid4().hex[:6]}"
    mappings = engine_dsl.mappings(None)
    del mappings["properties"]["labels"]["properties"]["leaf"]  # the mapping until now
    versioned_index(url, alias, {"settings": engine_dsl.index_settings(), "mappings": mappings})
    old = make_document("old.jpg", [("Cat", 90.0, ())], ingested_at="2026-01-01T00:00:00Z")
    put_old_document(url, alias, old, lambda body: [lb.pop("leaf") for lb in body["labels"]])

    index = open_index(f"{flavor}+{url}/{alias}", tmp_path)
    try:
        field = httpx.get(f"{url}/{alias}/_mapping/field/labels.leaf").json()
        (mapped,) = field.values()
        assert mapped["mappings"]["labels.leaf"]["mapping"]["leaf"]["type"] == "boolean"
        new = make_document("new.jpg", ingested_at="2026-01-02T00:00:00Z")
        new.labels = [Label("Beagle", 70.0, ("Dog",)), Label("Dog", 96.0)]
        index.upsert([new])
        assert {(c.label, c.count) for c in index.top_labels(10)} == {("Cat", 1), ("Beagle", 1)}
        assert {(c.label, c.count) for c in index.top_labels(10, parents=True)} == {
            ("Cat", 1),
            ("Beagle", 1),
            ("Dog", 1),
        }
    finally:
        index.close()
