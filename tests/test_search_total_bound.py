"""Totals counted up to a bound (track_total, as the search page asks): the page is the same,
the total stops at the bound and says so in the index, the API and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cli_helpers import imagedex_env, run_cli
from conftest import make_document
from imagedex.api import create_app
from imagedex.documents import SearchQuery
from imagedex.services import Services

WORDS = ("harbour", "harvest", "hare", "meadow")


@pytest.fixture
def services_with_docs(services: Services) -> Services:
    docs = [
        make_document(
            f"{i}.jpg",
            [("dog" if i % 3 else "cat", float(1 + i % 90), ("animal",))],
            title=f"{WORDS[i % 4]} {WORDS[(i * 7) % 4]} {i}",
            ingested_at=f"2026-01-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
        )
        for i in range(120)
    ]
    services.index.upsert(docs)
    return services


def test_index_counts_up_to_the_bound_with_the_same_page(services_with_docs: Services) -> None:
    index = services_with_docs.index
    for text, labels in (("ha", ()), ("harbour", ()), ("har", ("dog",)), ("meadow", ("animal",))):
        exact = index.search(SearchQuery(text=text, labels=labels, limit=24))
        assert exact.total > 20 and not exact.total_is_lower_bound
        bounded = index.search(SearchQuery(text=text, labels=labels, limit=24, track_total=20))
        assert (bounded.total, bounded.total_is_lower_bound) == (20, True)
        assert [d.id for d in bounded.documents] == [d.id for d in exact.documents]
        roomy = index.search(SearchQuery(text=text, labels=labels, track_total=exact.total))
        assert (roomy.total, roomy.total_is_lower_bound) == (exact.total, False)
    # a label's counter is exact at no cost: its total is never cut to the bound
    label = index.search(SearchQuery(labels=("animal",), track_total=10))
    assert (label.total, label.total_is_lower_bound) == (120, False)
    with pytest.raises(ValueError, match="track_total"):
        SearchQuery(track_total=-1)


def test_api_says_the_total_is_a_lower_bound(services_with_docs: Services) -> None:
    client = TestClient(create_app(services_with_docs), base_url="http://127.0.0.1")
    answer = client.get("/api/search", params={"q": "ha", "track_total": 20}).json()
    assert (answer["total"], answer["total_is_lower_bound"]) == (20, True)
    exact = client.get("/api/search", params={"q": "ha"}).json()
    assert exact["total"] > 20 and exact["total_is_lower_bound"] is False
    assert [h["id"] for h in answer["hits"]] == [h["id"] for h in exact["hits"]]
    assert client.get("/api/search", params={"q": "ha", "track_total": -1}).status_code == 422


def test_cli_shows_the_bound(services_with_docs: Services, tmp_path: Path) -> None:
    env = imagedex_env(services_with_docs.settings.data_dir)
    services_with_docs.close()
    shown = run_cli(env, "search", "ha", "--count-up-to", "20", "--limit", "3").stdout
    assert "20+ image(s)" in shown
    exact = run_cli(env, "search", "ha", "--limit", "3").stdout
    assert "20+" not in exact and "image(s)" in exact
    answer = run_cli(env, "search", "ha", "--count-up-to", "20", "--json").stdout
    assert '"total_is_lower_bound": true' in answer
