"""`analyzed_at`, when an image's analysis was last made, on every index backend: stored,
mapped, returned, and given to documents indexed before it existed (their `ingested_at`)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import make_document
from imagedex.index import engine_dsl, open_index
from imagedex.index.sqlite import _MIGRATIONS, SqliteIndex, _analyzed_at
from test_opensearch import put_old_document, versioned_index


def test_sqlite_stores_it_and_fills_it_for_documents_from_before(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    index = SqliteIndex(path)
    old = make_document("old.jpg", ingested_at="2026-01-01T00:00:00.000Z")
    new = make_document(
        "new.jpg", ingested_at="2026-01-02T00:00:00.000Z", analyzed_at="2026-03-01T10:00:00.000Z"
    )
    index.upsert([old, new])
    index.close()
    # the file as an earlier imagedex left it: bodies without analyzed_at, the migration steps
    # from the one that fills it onwards not yet run
    with sqlite3.connect(path) as db:
        steps = _MIGRATIONS.index(_analyzed_at) + 1
        (body,) = db.execute("SELECT body FROM docs WHERE id = ?", (old.id,)).fetchone()
        data = json.loads(body)
        data.pop("analyzed_at")
        db.execute("UPDATE docs SET body = ? WHERE id = ?", (json.dumps(data), old.id))
        db.execute(f"PRAGMA user_version = {steps - 1}")
    reopened = SqliteIndex(path)
    try:
        (body,) = reopened._db().execute("SELECT body FROM docs WHERE id = ?", (old.id,)).fetchone()
        assert json.loads(body)["analyzed_at"] == "2026-01-01T00:00:00.000Z"  # migrated
        got_old, got_new = reopened.get(old.id), reopened.get(new.id)
        assert got_old is not None and got_new is not None
        assert got_old.analyzed_at == "2026-01-01T00:00:00.000Z"
        assert got_new.analyzed_at == "2026-03-01T10:00:00.000Z"
        assert got_new.to_hit()["analyzed_at"] == "2026-03-01T10:00:00.000Z"
    finally:
        reopened.close()


@pytest.mark.parametrize("flavor", ["opensearch", "elasticsearch"])
def test_engines_map_it_and_fill_it_for_documents_from_before(
    flavor: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue(f"{flavor}_url")
    alias = f"before-analyzed-{uuid.uuid4().hex[:6]}"
    mappings = engine_dsl.mappings(None)
    del mappings["properties"]["analyzed_at"]  # the mapping imagedex made until now
    versioned_index(url, alias, {"settings": engine_dsl.index_settings(), "mappings": mappings})
    old = make_document("old.jpg", ingested_at="2026-01-01T00:00:00.000Z")
    put_old_document(url, alias, old, lambda body: body.pop("analyzed_at"))

    index = open_index(f"{flavor}+{url}/{alias}", tmp_path)
    try:
        field = httpx.get(f"{url}/{alias}/_mapping/field/analyzed_at").json()
        (mapped,) = field.values()
        assert mapped["mappings"]["analyzed_at"]["mapping"]["analyzed_at"]["type"] == "date"
        new = make_document(
            "new.jpg",
            ingested_at="2026-01-02T00:00:00.000Z",
            analyzed_at="2026-03-01T10:00:00.000Z",
        )
        index.upsert([new])  # the strict mapping takes it
        got = index.get(new.id)
        assert got is not None and got.analyzed_at == "2026-03-01T10:00:00.000Z"
        if flavor == "opensearch":  # the test Elasticsearch node has no reindex module
            deadline = time.monotonic() + 60
            while True:  # the engine fills it in a background task
                source = httpx.get(f"{url}/{alias}/_doc/{old.id}").json()["_source"]
                if "analyzed_at" in source or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert source.get("analyzed_at") == "2026-01-01T00:00:00.000Z"
        index.migrate()  # fills what _update_by_query could not
        for doc_id, when in ((old.id, "2026-01-01T00:00:00.000Z"), (new.id, new.analyzed_at)):
            back = index.get(doc_id)
            assert back is not None and back.analyzed_at == when
    finally:
        index.client.request("DELETE", f"/{alias}-v*")  # type: ignore[attr-defined]
        index.close()
