"""Queries with hundreds of labels: no join (SQLite) or clause (OpenSearch, Elasticsearch) per
label may break them. SQLite allows 64 tables in a join; the engines count every leaf clause."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import make_document
from imagedex.api import create_app
from imagedex.config import load_settings
from imagedex.dashboard import dashboard_data
from imagedex.documents import Label, SearchQuery
from imagedex.index import SearchIndex
from imagedex.services import Services

MANY = 200
NAMES = [f"thing-{i:03d}" for i in range(MANY)]

AT = "2026-01-01T00:00:00.000Z"
CORPUS = [
    # every label, the first one above 90 %
    make_document(
        "all.jpg",
        [Label(n, 95.0 if i == 0 else 80.0, ()) for i, n in enumerate(NAMES)],
        ingested_at=AT,
    ),
    # every label but the last
    make_document("most.jpg", [Label(n, 99.0, ()) for n in NAMES[:-1]], ingested_at=AT),
    # the last one only, through a parent
    make_document("parent.jpg", [Label("widget", 70.0, (NAMES[-1],))], ingested_at=AT),
    make_document("other.jpg", [Label("dog", 90.0, ())], ingested_at=AT),
]


@pytest.fixture(params=["sqlite", "opensearch", "elasticsearch"])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    index = "sqlite"
    alias = f"many-labels-{uuid.uuid4().hex[:8]}"
    if request.param != "sqlite":
        index = f"{request.param}+{request.getfixturevalue(f'{request.param}_url')}/{alias}"
    svc = Services.from_settings(load_settings(environ={}, data_dir=tmp_path, index=index))
    svc.index.upsert(CORPUS)
    yield svc
    if request.param != "sqlite":
        svc.index.client.request("DELETE", f"/{alias}-v*")  # type: ignore[attr-defined]
    svc.close()


def keys(index: SearchIndex, query: SearchQuery) -> list[str]:
    return sorted(d.key for d in index.search(query).documents)


def test_search_with_hundreds_of_labels(services: Services) -> None:
    index = services.index
    assert keys(index, SearchQuery(labels=tuple(NAMES))) == ["all.jpg"]
    # the same label many times, in other spellings: still one label to match
    assert keys(index, SearchQuery(labels=(NAMES[0].upper(),) * MANY)) == ["all.jpg", "most.jpg"]
    assert keys(index, SearchQuery(labels=tuple(NAMES), match_all_labels=False)) == [
        "all.jpg",
        "most.jpg",
        "parent.jpg",
    ]
    assert keys(index, SearchQuery(labels=tuple(NAMES), min_confidence=81)) == []
    assert keys(index, SearchQuery(labels=tuple(NAMES[:-1]), min_confidence=81)) == ["most.jpg"]
    assert keys(index, SearchQuery(labels=("dog", *NAMES), match_all_labels=False)) == [
        "all.jpg",
        "most.jpg",
        "other.jpg",
        "parent.jpg",
    ]
    # any of thousands: one clause whatever their number (before: one per label, refused at
    # the engines' clause limit)
    unknown = tuple(f"nothing-{i}" for i in range(4000))
    assert keys(index, SearchQuery(labels=(*unknown, NAMES[-1]), match_all_labels=False)) == [
        "all.jpg",
        "parent.jpg",
    ]
    ranked = index.search(SearchQuery(labels=tuple(NAMES[:-1]), sort="relevance")).documents
    assert [d.key for d in ranked] == ["most.jpg", "all.jpg"]  # by the first label's confidence


def test_facets_and_dashboard_with_hundreds_of_labels(services: Services) -> None:
    query = SearchQuery(labels=tuple(NAMES))
    facets = services.index.facets(query, labels=5)
    assert facets.total == 1
    assert [c.count for c in facets.labels] == [1] * 5
    facets = services.index.facets(SearchQuery(labels=tuple(NAMES), match_all_labels=False))
    assert facets.total == 3
    unknown = tuple(f"nothing-{i}" for i in range(4000))
    facets = services.index.facets(SearchQuery(labels=(*unknown, "dog"), match_all_labels=False))
    assert facets.total == 1 and facets.labels[0].label == "dog"
    data = dashboard_data(services, SearchQuery(labels=tuple(NAMES[:-1])), labels=3)
    assert data["total"] == 2
    assert [c["count"] for c in data["top_labels"]] == [2, 2, 2]


def test_the_api_answers_hundreds_of_label_parameters(tmp_path: Path) -> None:
    """`?label=` 200 times: was a 500 (SQLite's 64-table join limit) on the embedded index."""
    settings = load_settings(environ={}, data_dir=tmp_path, auth="off")
    services = Services.from_settings(settings)
    services.index.upsert(CORPUS)
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    params = [("label", name) for name in NAMES]
    found = client.get("/api/search", params=params)
    assert found.status_code == 200, found.text
    assert [hit["key"] for hit in found.json()["hits"]] == ["all.jpg"]
    facets = client.get("/api/facets", params=params)
    assert facets.status_code == 200 and facets.json()["total"] == 1
    dashboard = client.get("/api/dashboard", params=params[:-1])
    assert dashboard.status_code == 200, dashboard.text
    assert dashboard.json()["total"] == 2
    services.close()


def test_a_query_past_the_engines_clause_limit_is_a_clear_error_at_once(
    services: Services,
) -> None:
    # match=all needs one nested clause per label on the engines; past their clause limit the
    # query is the problem, not the engine: say so at once instead of retrying it as an outage
    import time

    from imagedex.errors import QueryTooLargeError

    labels = tuple(f"x-{i}" for i in range(5000))
    if services.settings.index == "sqlite":
        assert keys(services.index, SearchQuery(labels=labels)) == []
        return
    started = time.monotonic()
    with pytest.raises(QueryTooLargeError, match="fewer labels"):
        services.index.search(SearchQuery(labels=labels))
    assert time.monotonic() - started < 5
