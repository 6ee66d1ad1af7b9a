"""The search-engine HTTP client against a real local HTTP server: auth, retries, errors."""

from __future__ import annotations

import base64
import socket
import time
import uuid
from pathlib import Path

import pytest

from http_receiver import http_receiver
from imagedex.errors import ConfigError, IndexUnavailableError
from imagedex.index.engine_client import EngineAuth, EngineClient, EngineRequestError


def test_basic_auth_and_api_key_headers() -> None:
    with http_receiver() as rx:
        EngineClient(rx.url, EngineAuth(username="u", password="p w")).request("GET", "/")
        EngineClient(rx.url, EngineAuth(api_key="KEY123")).request("GET", "/")
    basic, api_key = rx.requests
    assert basic.headers["authorization"] == "Basic " + base64.b64encode(b"u:p w").decode()
    assert api_key.headers["authorization"] == "ApiKey KEY123"


def test_sigv4_signing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with http_receiver() as rx:
        client = EngineClient(rx.url, EngineAuth(sigv4_service="es"))
        client.request("POST", "/images/_search", {"query": {"match_all": {}}})
    (req,) = rx.requests
    auth = req.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/es/aws4_request" in auth
    assert "x-amz-date" in req.headers


def test_retries_429_and_5xx_with_backoff_then_succeeds() -> None:
    script = [(429, {"error": "too many"}), (503, {"error": "busy"}), (200, {"ok": True})]
    with http_receiver(script) as rx:
        assert EngineClient(rx.url).request("GET", "/") == {"ok": True}
    assert len(rx.requests) == 3


def test_gives_up_with_a_clear_error() -> None:
    script = [(503, {"error": {"type": "unavailable", "reason": "node down"}})]
    with (
        http_receiver(script) as rx,
        pytest.raises(IndexUnavailableError, match="keeps failing: HTTP 503"),
    ):
        EngineClient(rx.url, max_retries=2).request("GET", "/")
    assert len(rx.requests) == 3


def test_refusals_are_not_retried() -> None:
    body = {
        "error": {
            "root_cause": [
                {"type": "mapper_parsing_exception", "reason": "failed to parse field [labels]"}
            ]
        }
    }
    with (
        http_receiver([(400, body)]) as rx,
        pytest.raises(EngineRequestError, match="mapper_parsing_exception"),
    ):
        EngineClient(rx.url).request("PUT", "/x")
    assert len(rx.requests) == 1
    with (
        http_receiver([(401, {"error": "unauthorized"})]) as rx,
        pytest.raises(ConfigError, match="rejected the credentials"),
    ):
        EngineClient(rx.url).request("GET", "/")


def test_unreachable() -> None:
    with pytest.raises(IndexUnavailableError, match="unreachable"):
        EngineClient("http://127.0.0.1:9", max_retries=1).request("GET", "/")


def _free_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_dead_node_fails_over_to_the_next_at_once() -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    with http_receiver([(200, {"ok": True})]) as alive:
        client = EngineClient([dead, alive.url])
        started = time.monotonic()
        assert client.request("GET", "/") == {"ok": True}
        assert time.monotonic() - started < 1.0  # no backoff: another node took it
        assert client.base_url == alive.url
        client.request("GET", "/again")  # stays on the node that answers
    assert [r.path for r in alive.requests] == ["/", "/again"]


def test_a_node_answering_503_hands_the_request_to_the_next() -> None:
    busy = [(503, {"error": {"type": "cluster_block_exception", "reason": "no master"}})]
    with http_receiver(busy) as down, http_receiver([(200, {"ok": True})]) as up:
        assert EngineClient([down.url, up.url]).request("GET", "/") == {"ok": True}
    assert len(down.requests) == len(up.requests) == 1


def test_every_node_down_is_one_clear_error() -> None:
    nodes = [f"http://127.0.0.1:{_free_port()}" for _ in range(2)]
    with pytest.raises(IndexUnavailableError, match="no node of the search engine") as error:
        EngineClient(nodes, max_retries=1).request("GET", "/")
    assert all(node in str(error.value) for node in nodes)


def test_index_url_lists_nodes(opensearch_url: str, tmp_path: Path) -> None:
    """A real node behind a dead one in the index URL: opening, writing and searching work."""
    from conftest import make_document
    from imagedex.config import load_settings
    from imagedex.documents import Label, SearchQuery
    from imagedex.errors import ConfigError
    from imagedex.index import open_index

    host = opensearch_url.removeprefix("http://")
    alias = f"nodes-{uuid.uuid4().hex[:8]}"
    url = f"opensearch+http://127.0.0.1:{_free_port()},{host}/{alias}"
    settings = load_settings(environ={"IMAGEDEX_INDEX": url})
    index = open_index(settings.index, tmp_path, settings)
    try:
        doc = make_document("a.jpg", [Label("pizza", 90.0)], ingested_at="2026-01-01T00:00:01.000Z")
        index.upsert([doc])
        assert [d.key for d in index.search(SearchQuery(labels=["pizza"])).documents] == ["a.jpg"]
        assert index.client.base_url == opensearch_url  # type: ignore[attr-defined]
    finally:
        index.client.request("DELETE", f"/{alias}-v*")  # type: ignore[attr-defined]
        index.close()
    with pytest.raises(ConfigError, match="no host in ''"):
        load_settings(environ={"IMAGEDEX_INDEX": "opensearch+http://a:9200,,b:9200/images"})
