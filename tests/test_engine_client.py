"""The search-engine HTTP client against a real local HTTP server: auth, retries, errors."""

from __future__ import annotations

import base64

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
