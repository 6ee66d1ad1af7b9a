"""The dashboard's People panel (issue 15): images per person among the images the filters
match, hidden people left out, names from the people store; the same counts on SQLite,
OpenSearch and Elasticsearch (a nested aggregation over faces.person_id), and the CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import httpx
import pytest

from imagedex.config import load_settings
from imagedex.documents import SearchQuery
from imagedex.index import SearchIndex, open_index
from imagedex.people.store import FILE_NAME, PeopleStore
from imagedex.services import Services
from live_app import live_app
from test_people_engines import people_documents


@pytest.mark.parametrize("backend", ["sqlite", "opensearch", "elasticsearch"])
def test_top_people_is_the_same_on_every_backend(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    alias = f"dashpeople-{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        index: SearchIndex = open_index("sqlite", tmp_path)
    else:
        base = request.getfixturevalue(f"{backend}_url")
        index = open_index(f"{backend}+{base}/{alias}", tmp_path)
    try:
        index.upsert(people_documents(tmp_path))  # Anna (1) in img0..img3, Bob (2) in img1..3
        assert index.top_people(SearchQuery()) == [(1, 4), (2, 3)]
        assert index.top_people(SearchQuery(), limit=1) == [(1, 4)]
        assert index.top_people(SearchQuery(), exclude=[1]) == [(2, 3)]
        assert index.top_people(SearchQuery(text="img0")) == [(1, 1)]
        assert index.top_people(SearchQuery(people=("Bob",))) == [(1, 3), (2, 3)]
        assert index.top_people(SearchQuery(text="nobody")) == []
    finally:
        if backend != "sqlite":
            index.client.request("DELETE", f"/{alias}-v*")  # type: ignore[attr-defined]
        index.close()


def test_the_dashboard_people_panel_and_its_csv(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = Services.from_settings(load_settings(environ={}, data_dir=data))
    try:
        with live_app(services) as url, httpx.Client(base_url=url) as http:
            # no people store yet: an empty panel, and the dashboard does not create one
            assert http.get("/api/dashboard").json()["people"] == []
            assert not (data / FILE_NAME).exists()

            services.index.upsert(people_documents(data))
            answer = http.get("/api/dashboard").json()
            assert answer["people"] == [
                {"id": 1, "name": "Anna Lee", "count": 4},
                {"id": 2, "name": "Bob", "count": 3},
            ]
            filtered = http.get("/api/dashboard", params={"q": "img0"}).json()
            assert filtered["people"] == [{"id": 1, "name": "Anna Lee", "count": 1}]

            store = PeopleStore.in_data_dir(data)
            store.set_hidden(1, True)
            store.rename(2, "Bob Marsh")  # read at request time: no reindex
            store.close()
            shown = http.get("/api/dashboard").json()["people"]
            assert shown == [{"id": 2, "name": "Bob Marsh", "count": 3}]

            exported = http.get("/api/dashboard/people.csv")
            assert exported.status_code == 200
            assert list(csv.reader(io.StringIO(exported.text))) == [
                ["person_id", "name", "images"],
                ["2", "Bob Marsh", "3"],
            ]
    finally:
        services.close()
