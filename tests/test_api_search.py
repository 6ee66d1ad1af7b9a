"""The search API the web app uses: query syntax, date ranges and facets, over a real index."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from conftest import make_document
from imagedex.api import create_app
from imagedex.documents import ImageDocument
from imagedex.services import Services


def doc(key: str, labels: list[tuple[str, float, tuple[str, ...]]], at: str) -> ImageDocument:
    return make_document(key, labels, ingested_at=at)


@pytest.fixture
def client(services: Services) -> TestClient:
    services.index.upsert(
        [
            doc("rex.jpg", [("golden retriever", 95.0, ("dog", "animal"))], "2026-01-05T10:00:00Z"),
            doc("fido.jpg", [("beagle", 70.0, ("dog", "animal"))], "2026-01-20T10:00:00Z"),
            doc("tom.jpg", [("tabby cat", 88.0, ("cat", "animal"))], "2026-02-03T10:00:00Z"),
            dataclasses.replace(
                doc("pool.jpg", [("swimsuit", 60.0, ())], "2026-02-04T10:00:00Z"),
                moderation=[{"label": "Suggestive", "confidence": 80.0, "parent": ""}],
            ),
        ]
    )
    return TestClient(create_app(services), base_url="http://127.0.0.1")


def keys(answer: dict) -> list[str]:  # type: ignore[type-arg]
    return [hit["key"] for hit in answer["hits"]]


def test_search_box_syntax(client: TestClient) -> None:
    answer = client.get("/api/search", params={"q": "label:dog conf>=90"}).json()
    assert (answer["total"], keys(answer)) == (1, ["rex.jpg"])
    dated = client.get("/api/search", params={"q": "label:animal after:2026-01-10 sort:newest"})
    assert keys(dated.json()) == ["tom.jpg", "fido.jpg"]
    quoted = client.get("/api/search", params={"q": 'label:"tabby cat"'}).json()
    assert keys(quoted) == ["tom.jpg"]
    assert keys(client.get("/api/search", params={"q": "unsafe"}).json()) == ["pool.jpg"]
    assert client.get("/api/search", params={"q": "safe"}).json()["total"] == 3
    words = client.get("/api/search", params={"q": "beagle before:2026-02-01"}).json()
    assert keys(words) == ["fido.jpg"]


def test_explicit_params_combine_with_q(client: TestClient) -> None:
    params = {"label": "animal", "date_from": "2026-01-10", "date_to": "2026-02-01T00:00:00Z"}
    assert keys(client.get("/api/search", params=params).json()) == ["fido.jpg"]
    both = client.get("/api/search", params={"label": "animal", "q": "label:dog", "sort": "oldest"})
    assert keys(both.json()) == ["rex.jpg", "fido.jpg"]  # labels add up: animal AND dog
    offset = client.get("/api/search", params={"q": "label:animal sort:oldest", "offset": 2})
    assert keys(offset.json()) == ["tom.jpg"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "conf>=lots"}, "conf>=lots"),
        ({"q": "after:someday"}, "after:someday"),
        ({"q": "after:2026-03-01 before:2026-01-01"}, "later than before"),
        ({"date_from": "last tuesday"}, "date_from"),
        ({"date_from": "2026-03-01", "date_to": "2026-01-01"}, "swap"),
    ],
)
def test_bad_queries_are_400_with_the_reason(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    for path in ("/api/search", "/api/facets"):
        response = client.get(path, params=params)
        assert response.status_code == 400, response.text
        assert message in response.json()["detail"]


def test_search_with_facets(client: TestClient) -> None:
    answer = client.get(
        "/api/search", params={"q": "label:animal", "facets": "true", "limit": 1}
    ).json()
    assert len(answer["hits"]) == 1  # the page is limited, the facets are not
    facets = answer["facets"]
    assert facets["total"] == 3
    assert facets["labels"] == [
        {"label": "beagle", "count": 1},
        {"label": "golden retriever", "count": 1},
        {"label": "tabby cat", "count": 1},
    ]
    assert [b["count"] for b in facets["confidence"]] == [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert facets["moderation"] == {"safe": 3, "unsafe": 0, "labels": []}
    assert "facets" not in client.get("/api/search", params={"q": "label:animal"}).json()


def test_facets_endpoint_for_the_dashboard(client: TestClient) -> None:
    monthly = client.get("/api/facets", params={"interval": "month", "labels": 2}).json()
    assert monthly["total"] == 4
    assert monthly["over_time"] == [
        {"start": "2026-01-01T00:00:00Z", "count": 2},
        {"start": "2026-02-01T00:00:00Z", "count": 2},
    ]
    assert len(monthly["labels"]) == 2
    assert monthly["moderation"] == {
        "safe": 3,
        "unsafe": 1,
        "labels": [{"label": "Suggestive", "count": 1}],
    }
    week = client.get(
        "/api/facets",
        params={"q": "label:dog", "interval": "week", "date_from": "2026-01-05"},
    ).json()
    assert week["total"] == 2
    assert [b["count"] for b in week["over_time"]] == [1, 0, 1]  # weeks of Jan 5, 12, 19
    unsafe = client.get("/api/facets", params={"moderation": "unsafe"}).json()
    assert unsafe["labels"] == [{"label": "swimsuit", "count": 1}]
    assert client.get("/api/facets", params={"interval": "year"}).status_code == 422
    too_fine = client.get("/api/facets", params={"interval": "minute", "date_from": "2020-01-01"})
    assert too_fine.status_code == 400 and "buckets" in too_fine.json()["detail"]


def test_facets_in_the_openapi_spec(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/search", "/api/facets"} <= set(spec["paths"])
    params = {p["name"] for p in spec["paths"]["/api/facets"]["get"]["parameters"]}
    assert {"q", "label", "date_from", "date_to", "interval", "labels"} <= params


def test_cli_search_understands_the_syntax(client: TestClient, services: Services) -> None:
    from cli_helpers import cli_json, imagedex_env, run_cli

    env = imagedex_env(services.settings.data_dir)
    found = cli_json(env, "search", "label:animal conf>=80 sort:oldest")
    assert [h["key"] for h in found["hits"]] == ["rex.jpg", "tom.jpg"]
    dated = cli_json(
        env, "search", "--label", "dog", "--after", "2026-01-10", "--before", "2026-02"
    )
    assert [h["key"] for h in dated["hits"]] == ["fido.jpg"]
    bad = run_cli(env, "search", "label:dog conf>=lots", check=False)
    assert bad.returncode == 2 and "conf>=lots" in bad.stderr
