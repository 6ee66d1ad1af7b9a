"""A small HTTP client for OpenSearch / Elasticsearch REST APIs.

Talks to one node of a cluster and fails over to the next listed node when that one stops
answering; retries with exponential backoff once every node has failed; auth by basic
credentials, API key or AWS SigV4 (Amazon OpenSearch Service); TLS verification on by default.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from imagedex.errors import ConfigError, ImagedexError, IndexUnavailableError, QueryTooLargeError

log = logging.getLogger("imagedex.index.engine")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# what a node (or a balancer in front of it) answers when it cannot serve: another node may
_NODE_DOWN = frozenset({502, 503, 504})
#: a node that failed is passed over this long before it is tried again
NODE_REVIVE_SECONDS = 30.0
#: a dead host on a real network does not refuse: it times out, and failover waits this long
CONNECT_TIMEOUT = 5.0
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
    """Requests to an engine cluster through one of its nodes (`base_url`: one URL or several).

    The client stays on one node while it answers, so a write is read back from the node that
    took it; when the node cannot be reached (or answers 502/503/504) the request goes at once
    to the next node that has not failed lately, and only when every node has failed does it
    back off and retry."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        auth: EngineAuth = EngineAuth(),
        timeout: float = 30.0,
        max_retries: int = 5,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.nodes = [url.rstrip("/") for url in urls]
        if not self.nodes:
            raise ValueError("an engine client needs at least one node URL")
        self.auth = auth
        self.max_retries = max_retries
        headers = {"Content-Type": "application/json"}
        if auth.api_key:
            headers["Authorization"] = f"ApiKey {auth.api_key}"
        basic = (auth.username, auth.password) if auth.username else None
        verify: bool | str = auth.ca_file or auth.verify_tls
        limits = httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
        self._clients = [
            httpx.Client(base_url=url, headers=headers, auth=basic, verify=verify, timeout=limits)
            for url in self.nodes
        ]
        self._current = 0
        self._failed_at = [float("-inf")] * len(self.nodes)
        self._signer: Any = self._make_signer() if auth.sigv4_service else None

    @property
    def base_url(self) -> str:
        """The node requests go to now."""
        return self.nodes[self._current]

    @property
    def _http(self) -> httpx.Client:
        return self._clients[self._current]

    def _unreachable(self) -> str:
        if len(self.nodes) == 1:
            return f"search engine at {self.nodes[0]} is unreachable"
        return f"no node of the search engine ({', '.join(self.nodes)}) is reachable"

    def _fail_over(self, tried: set[int]) -> bool:
        """Mark the current node failed; move to the next node not tried in this request and
        not failed lately (else the one that failed longest ago). Whether the new node is one
        this request has not tried yet, so that it can go there without waiting."""
        now = time.monotonic()
        self._failed_at[self._current] = now
        count = len(self.nodes)
        order = [(self._current + step) % count for step in range(1, count + 1)]
        for node in order:
            if node not in tried and now - self._failed_at[node] >= NODE_REVIVE_SECONDS:
                log.warning(
                    "search engine node %s failed; going on with %s",
                    self.base_url,
                    self.nodes[node],
                )
                self._current = node
                return True
        self._current = min(order, key=lambda node: self._failed_at[node])
        return False

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
        tried: set[int] = set()
        while True:
            attempt += 1
            tried.add(self._current)
            try:
                if self._signer is not None:
                    url = str(self._http.build_request(method, path, params=params).url)
                    headers = {**headers, **self._signed_headers(method, url, content)}
                response = self._http.request(
                    method, path, content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if self._fail_over(tried):
                    attempt -= 1  # another node gets the request at once: not a retry
                    continue
                if attempt > self.max_retries:
                    raise IndexUnavailableError(f"{self._unreachable()}: {exc}") from exc
                tried.clear()
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
                if response.status_code in _NODE_DOWN and self._fail_over(tried):
                    attempt -= 1
                    continue
                tried.clear()
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
        for client in self._clients:
            client.close()
