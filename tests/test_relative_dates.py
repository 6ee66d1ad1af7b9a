"""Relative dates (`after:today`, `after:-7d`, `before:-2h`) in the search box, the CLI and the
API, counted back from the moment of the query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cli_helpers import cli_json, imagedex_env, run_cli
from conftest import make_document
from imagedex.api import create_app
from imagedex.config import load_settings
from imagedex.documents import SearchQuery, utc_timestamp
from imagedex.errors import QuerySyntaxError
from imagedex.index.query_syntax import parse_query
from imagedex.services import Services

NOW = datetime(2026, 3, 4, 15, 30, 45, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", "2026-03-04T00:00:00.000Z"),
        ("Yesterday", "2026-03-03T00:00:00.000Z"),
        ("tomorrow", "2026-03-05T00:00:00.000Z"),
        ("now", "2026-03-04T15:30:45.123Z"),
        ("-7d", "2026-02-25T15:30:45.123Z"),
        ("-2h", "2026-03-04T13:30:45.123Z"),
        ("-30m", "2026-03-04T15:00:45.123Z"),
        ("-1w", "2026-02-25T15:30:45.123Z"),
        ("now-7d", "2026-02-25T15:30:45.123Z"),
        ("2026-01-31", "2026-01-31T00:00:00.000Z"),  # absolute dates as before
    ],
)
def test_relative_dates_count_back_from_now(text: str, expected: str) -> None:
    assert utc_timestamp(text, NOW) == expected
    query = parse_query(f"label:dog after:{text}", now=NOW)
    assert query.date_from == expected and query.labels == ("dog",)


def test_relative_dates_on_both_ends() -> None:
    query = parse_query("after:yesterday before:today", now=NOW)
    assert (query.date_from, query.date_to) == (
        "2026-03-03T00:00:00.000Z",
        "2026-03-04T00:00:00.000Z",
    )
    last_week = parse_query("after:-7d before:-2h", now=NOW)
    assert last_week.date_from == (NOW - timedelta(days=7)).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    with pytest.raises(QuerySyntaxError, match="later than before"):
        parse_query("after:today before:-2d", now=NOW)


@pytest.mark.parametrize("token", ["after:-7x", "after:+7d", "before:lastweek", "after:-d"])
def test_unknown_forms_name_the_accepted_ones(token: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(token, now=NOW)
    message = str(caught.value)
    assert token in message
    for form in ("2026-01-31", "today", "yesterday", "-7d", "-2h"):
        assert form in message


def test_search_query_fields_take_relative_dates_from_the_wall_clock() -> None:
    before = datetime.now(UTC) - timedelta(hours=2)
    query = SearchQuery(date_from="-2h", date_to="tomorrow")
    assert query.date_from is not None and query.date_to is not None
    start = datetime.fromisoformat(query.date_from.replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= start <= datetime.now(UTC) - timedelta(hours=2)
    assert query.date_to.endswith("T00:00:00.000Z")


def _recent_and_old(services: Services) -> None:
    now = datetime.now(UTC)
    services.index.upsert(
        [
            make_document(
                "fresh.jpg",
                [("beagle", 90.0, ("dog",))],
                ingested_at=(now - timedelta(minutes=5)).isoformat(),
            ),
            make_document(
                "lastweek.jpg",
                [("beagle", 90.0, ("dog",))],
                ingested_at=(now - timedelta(days=6)).isoformat(),
            ),
            make_document(
                "old.jpg",
                [("beagle", 90.0, ("dog",))],
                ingested_at=(now - timedelta(days=40)).isoformat(),
            ),
        ]
    )


def test_the_api_takes_relative_dates_in_q_and_in_date_params(services: Services) -> None:
    _recent_and_old(services)
    client = TestClient(create_app(services), base_url="http://127.0.0.1")

    def keys(params: dict[str, str]) -> set[str]:
        response = client.get("/api/search", params=params)
        assert response.status_code == 200, response.text
        return {hit["key"] for hit in response.json()["hits"]}

    assert keys({"q": "label:dog after:-1h"}) == {"fresh.jpg"}
    assert keys({"q": "label:dog after:-7d"}) == {"fresh.jpg", "lastweek.jpg"}
    assert keys({"q": "before:-7d"}) == {"old.jpg"}
    assert keys({"date_from": "-7d", "date_to": "now"}) == {"fresh.jpg", "lastweek.jpg"}
    assert keys({"q": "after:tomorrow"}) == set()
    bad = client.get("/api/search", params={"date_from": "last tuesday"})
    assert bad.status_code == 400 and "-7d" in bad.json()["detail"]


def test_the_cli_takes_relative_dates(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data")
    services = Services.from_settings(load_settings(environ=env))
    try:
        _recent_and_old(services)
    finally:
        services.close()
    found = cli_json(env, "search", "--after", "-1d")
    assert [hit["key"] for hit in found["hits"]] == ["fresh.jpg"]
    boxed = cli_json(env, "search", "after:-30d before:-1d")
    assert [hit["key"] for hit in boxed["hits"]] == ["lastweek.jpg"]
    refused = run_cli(env, "search", "--after", "notadate", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "notadate" in refused.stderr and "-7d" in refused.stderr
