"""A small HTTP client for OpenSearch / Elasticsearch REST APIs.

Retries with exponential backoff on connection errors, 429 and 5xx; auth by basic credentials,
API key or AWS SigV4 (Amazon OpenSearch Service); TLS verification on by default.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from imagedex.errors import ConfigError, ImagedexError, IndexUnavailableError, QueryTooLargeError

log = logging.getLogger("imagedex.index.engine")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# what OpenSearch/Elasticsearch say, with a 500 or a 400, when a query has more clauses than
# indices.query.bool.max_clause_count allows: the query is at fault, a retry cannot help
_TOO_MANY_CLAUSES = ("too_many_clauses", "too_many_nested_clauses", "maxclausecount")


class EngineRequestError(ImagedexError):
    """The engine answered, but refused the request (4xx other than 429)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"search engine refused the request (HTTP {status}): {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class EngineAuth:
    username: str = ""
    password: str = ""
    api_key: str = ""
    sigv4_service: str = ""  # "es" (Amazon OpenSearch Service) or "aoss" (Serverless)
    verify_tls: bool = True
    ca_file: str = ""


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        root = (error.get("root_cause") or [error])[0]
        return f"{root.get('type', error.get('type'))}: {root.get('reason', error.get('reason'))}"
    return str(error or body)[:500]


def _too_many_clauses(response: httpx.Response) -> bool:
    text = response.text[:20_000].lower().replace(" ", "")
    return any(marker in text for marker in _TOO_MANY_CLAUSES)


class EngineClient:
    def __init__(
        self,
        base_url: str,
        auth: EngineAuth = EngineAuth(),
        timeout: float = 30.0,
        max_retries: int = 5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.max_retries = max_retries
        headers = {"Content-Type": "application/json"}
        if auth.api_key:
            headers["Authorization"] = f"ApiKey {auth.api_key}"
        basic = (auth.username, auth.password) if auth.username else None
        verify: bool | str = auth.ca_file or auth.verify_tls
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, auth=basic, verify=verify, timeout=timeout
        )
        self._signer: Any = self._make_signer() if auth.sigv4_service else None

    def _make_signer(self) -> Any:
        try:
            import boto3
            from botocore.auth import SigV4Auth
        except ImportError as exc:  # pragma: no cover - boto3 is a dependency
            raise ConfigError("AWS SigV4 signing needs boto3") from exc
        session = boto3.session.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigError("AWS SigV4 signing is on but no AWS credentials were found")
        return SigV4Auth(
            credentials.get_frozen_credentials(),
            self.auth.sigv4_service,
            session.region_name or "us-east-1",
        )

    def _signed_headers(self, method: str, url: str, body: bytes | None) -> dict[str, str]:
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(
            method=method, url=url, data=body or b"", headers={"Content-Type": "application/json"}
        )
        self._signer.add_auth(request)
        return dict(request.headers.items())

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        ndjson: bytes | None = None,
        allow: tuple[int, ...] = (),
    ) -> Any:
        """Send one request; JSON in and out. Statuses in `allow` return None instead of raising."""
        content = (
            ndjson
            if ndjson is not None
            else (json.dumps(body).encode() if body is not None else None)
        )
        headers = {"Content-Type": "application/x-ndjson"} if ndjson is not None else {}
        attempt = 0
        while True:
            attempt += 1
            try:
                if self._signer is not None:
                    url = str(self._http.build_request(method, path, params=params).url)
                    headers = {**headers, **self._signed_headers(method, url, content)}
                response = self._http.request(
                    method, path, content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt > self.max_retries:
                    raise IndexUnavailableError(
                        f"search engine at {self.base_url} is unreachable: {exc}"
                    ) from exc
                self._backoff(attempt, f"connection failed ({exc})")
                continue
            if response.status_code in allow:
                return None
            if response.status_code >= 400 and _too_many_clauses(response):
                raise QueryTooLargeError(
                    "the search engine refuses queries this large (its clause limit, "
                    "indices.query.bool.max_clause_count): search with fewer labels, or with "
                    f"match=any: {_reason(response)}"
                )
            if response.status_code in RETRY_STATUSES or response.status_code >= 500:
                if attempt > self.max_retries:
                    raise IndexUnavailableError(
                        f"search engine at {self.base_url} keeps failing: HTTP "
                        f"{response.status_code} {_reason(response)}"
                    )
                self._backoff(attempt, f"HTTP {response.status_code}")
                continue
            if response.status_code in (401, 403):
                raise ConfigError(
                    f"search engine at {self.base_url} rejected the credentials "
                    f"(HTTP {response.status_code}): {_reason(response)}"
                )
            if response.status_code >= 400:
                raise EngineRequestError(response.status_code, _reason(response))
            return response.json() if response.content else None

    def _backoff(self, attempt: int, why: str) -> None:
        delay = min(10.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        log.warning("search engine request failed (%s); retry %d in %.1fs", why, attempt, delay)
        time.sleep(delay)

    def close(self) -> None:
        self._http.close()
