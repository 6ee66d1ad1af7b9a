"""Access control through the HTTP API: keys, logins, CSRF, roles, rate limits, signed links."""

from __future__ import annotations

import io
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image
from starlette.routing import BaseRoute

from cli_helpers import free_port
from conftest import ColourRecognizer
from imagedex.access.control import AccessControl
from imagedex.access.policy import auth_required, load_secret
from imagedex.access.ratelimit import RateLimiter
from imagedex.access.signing import LinkSigner
from imagedex.access.store import AccessStore
from imagedex.api import create_app
from imagedex.config import Settings, load_settings
from imagedex.errors import ConfigError
from imagedex.ingest.worker import Worker
from imagedex.services import Services

PUBLIC_API = {"/api/login", "/api/session"}


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "auth": "on",
        "retry_delay": 0.0,
        "login_attempts_per_minute": 3,
        "uploads_per_minute": 100,
    }
    values.update(overrides)
    return load_settings(environ={}, **values)


class Deployment:
    """An app with auth on, its access control on injected clocks, and one key per role."""

    def __init__(self, tmp_path: Path, **overrides: object) -> None:
        self.settings = make_settings(tmp_path, **overrides)
        self.services = Services.from_settings(self.settings)
        self.clock = Clock(1_800_000_000.0)
        self.monotonic = Clock(1000.0)
        self.access = AccessControl(self.settings, clock=self.clock, monotonic=self.monotonic)
        self.app = create_app(self.services)
        self.app.state.access = self.access
        self.client = TestClient(self.app, base_url="http://127.0.0.1")
        self.keys = {
            role: self.access.store.create_key(f"{role} script", role)[1]
            for role in ("viewer", "editor", "admin")
        }

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def upload(self, colour: tuple[int, int, int] = (255, 0, 0)) -> str:
        response = self.client.post(
            "/api/images",
            files={"file": ("red.png", png(colour), "image/png")},
            headers=self.auth("editor"),
        )
        assert response.status_code == 202, response.text
        Worker(self.services, recognizers=[ColourRecognizer()]).run(once=True)
        doc_id: str = response.json()["id"]
        return doc_id

    def close(self) -> None:
        self.client.close()
        self.access.close()
        self.services.close()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(tmp_path)
    yield deployed
    deployed.close()


def all_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute, also inside included routers (newer FastAPI keeps those as a node)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from all_routes(inner.routes, prefix + (getattr(context, "prefix", "") or ""))


def api_requests(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) for every /api route, path parameters filled in."""
    found = []
    for path, route in all_routes(app.routes):
        if path.startswith("/api/"):
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            found.extend((method, concrete) for method in sorted(route.methods))
    documented = {p for p in app.openapi()["paths"] if p.startswith("/api/")}
    walked = {path for path, _route in all_routes(app.routes)}
    assert documented <= walked, documented - walked  # the walk sees at least what OpenAPI sees
    return found


def test_every_api_route_refuses_anonymous_callers(deployment: Deployment) -> None:
    requests = api_requests(deployment.app)
    checked = [(m, p) for m, p in requests if p not in PUBLIC_API]
    assert ("POST", "/api/images") in checked and ("GET", "/api/search") in checked
    assert ("POST", "/api/keys") in checked and ("GET", "/api/images/x/link") in checked
    for method, path in checked:
        response = deployment.client.request(method, path)
        assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
        assert "authentication required" in response.json()["detail"], (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        garbage = deployment.client.request(method, path, headers={"X-API-Key": "idx_nope_nope"})
        assert garbage.status_code == 401, f"{method} {path} took a made-up key"
    for method, path in requests:
        if path in PUBLIC_API:
            assert deployment.client.request(method, path).status_code != 401


def test_roles_decide_what_a_key_may_do(deployment: Deployment) -> None:
    client = deployment.client
    image = {"file": ("a.png", png((0, 0, 255)), "image/png")}
    assert client.get("/api/search", headers=deployment.auth("viewer")).status_code == 200
    refused = client.post("/api/images", files=image, headers=deployment.auth("viewer"))
    assert refused.status_code == 403
    assert "needs the editor role" in refused.json()["detail"]
    assert (
        client.post("/api/images", files=image, headers=deployment.auth("editor")).status_code
        == 202
    )
    new_key = {"name": "ci", "role": "viewer"}
    assert (
        client.post("/api/keys", json=new_key, headers=deployment.auth("editor")).status_code == 403
    )
    assert client.get("/api/users", headers=deployment.auth("editor")).status_code == 403

    created = client.post("/api/keys", json=new_key, headers=deployment.auth("admin"))
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    assert secret.startswith(f"idx_{created.json()['id']}_")
    assert client.get("/api/search", headers={"X-API-Key": secret}).status_code == 200
    listed = client.get("/api/keys", headers=deployment.auth("admin")).json()["keys"]
    assert {k["name"] for k in listed} == {"viewer script", "editor script", "admin script", "ci"}
    assert all("key" not in k and "secret_sha256" not in k for k in listed)
    assert next(k for k in listed if k["name"] == "ci")["last_used_at"] is not None

    bad_role = client.post(
        "/api/keys", json={"name": "x", "role": "root"}, headers=deployment.auth("admin")
    )
    assert bad_role.status_code == 422


def test_revoked_and_forged_keys_get_401(deployment: Deployment) -> None:
    client = deployment.client
    created = client.post(
        "/api/keys", json={"name": "temp", "role": "editor"}, headers=deployment.auth("admin")
    ).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/api/search", headers=headers).status_code == 200
    forged = created["key"][:-2] + ("AA" if not created["key"].endswith("AA") else "BB")
    assert client.get("/api/search", headers={"X-API-Key": forged}).status_code == 401
    not_ours = client.get("/api/search", headers={"Authorization": "Bearer eyJhbGciOi.x.y"})
    assert not_ours.status_code == 401 and "not an imagedex API key" in not_ours.json()["detail"]

    revoked = client.delete(f"/api/keys/{created['id']}", headers=deployment.auth("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    after = client.get("/api/search", headers=headers)
    assert after.status_code == 401 and "unknown or revoked" in after.json()["detail"]
    again = client.delete(f"/api/keys/{created['id']}", headers=deployment.auth("admin"))
    assert again.status_code == 409
    assert client.delete("/api/keys/nosuch", headers=deployment.auth("admin")).status_code == 404


def login(
    client: TestClient | httpx.Client, name: str, password: str, form: bool = False
) -> httpx.Response:
    body = {"name": name, "password": password}
    return client.post("/api/login", data=body) if form else client.post("/api/login", json=body)


def test_cookie_login_needs_the_csrf_header_on_unsafe_methods(deployment: Deployment) -> None:
    deployment.access.store.add_user("alice", "editor", "correct horse battery")
    client = deployment.client
    anonymous = client.get("/api/session").json()
    assert anonymous == {
        "authenticated": False,
        "name": None,
        "role": None,
        "via": None,
        "auth_required": True,
        "csrf_token": None,
    }
    logged_in = login(client, "alice", "correct horse battery", form=True)
    assert logged_in.status_code == 200, logged_in.text
    csrf = logged_in.json()["csrf_token"]
    assert logged_in.json() == {"name": "alice", "role": "editor", "csrf_token": csrf}
    cookies = {c.split("=", 1)[0]: c.lower() for c in logged_in.headers.get_list("set-cookie")}
    assert (
        "httponly" in cookies["imagedex_session"] and "samesite=lax" in cookies["imagedex_session"]
    )
    assert "httponly" not in cookies["imagedex_csrf"] and "samesite=lax" in cookies["imagedex_csrf"]
    assert "secure" not in cookies["imagedex_session"]  # plain http here
    assert client.cookies["imagedex_csrf"] == csrf
    me = client.get("/api/session").json()
    assert me["authenticated"] and me["name"] == "alice" and me["csrf_token"] == csrf

    assert client.get("/api/search").status_code == 200  # safe methods need no token
    image = {"file": ("a.png", png((0, 255, 0)), "image/png")}
    missing = client.post("/api/images", files=image)
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    wrong = client.post("/api/images", files=image, headers={"X-CSRF-Token": csrf[:-1] + "x"})
    assert wrong.status_code == 403
    cross_site = client.post(
        "/api/images", files=image, headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403
    accepted = client.post("/api/images", files=image, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 202, accepted.text

    assert client.post("/api/logout").status_code == 403  # logout is unsafe too
    assert client.post("/api/logout", headers={"X-CSRF-Token": csrf}).json()["logged_out"]
    client.cookies.set("imagedex_session", logged_in.cookies["imagedex_session"])
    ended = client.get("/api/search")
    assert ended.status_code == 401 and "log in again" in ended.json()["detail"]


def test_sessions_expire_and_follow_the_user(deployment: Deployment) -> None:
    store = deployment.access.store
    store.add_user("bob", "viewer", "a long passphrase")
    client = deployment.client
    assert login(client, "bob", "a long passphrase").status_code == 200
    assert client.get("/api/search").status_code == 200
    deployment.clock.now += deployment.settings.session_ttl + 1
    assert client.get("/api/search").status_code == 401

    assert login(client, "bob", "a long passphrase").status_code == 200
    store.set_password("bob", "another long passphrase")  # ends every session of bob
    assert client.get("/api/search").status_code == 401
    assert login(client, "bob", "a long passphrase").status_code == 401
    assert login(client, "bob", "another long passphrase").status_code == 200
    store.remove_user("bob")
    assert client.get("/api/search").status_code == 401


def test_login_attempts_are_rate_limited_per_address(deployment: Deployment) -> None:
    deployment.access.store.add_user("carol", "viewer", "the right password")
    client = deployment.client
    for _ in range(5):  # successful logins give their slot back
        assert login(client, "carol", "the right password").status_code == 200
    for _ in range(3):
        failed = login(client, "carol", "guess")
        assert failed.status_code == 401 and failed.json()["detail"] == "wrong name or password"
    limited = login(client, "carol", "the right password")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "too many login attempts" in limited.json()["detail"]
    deployment.monotonic.now += 61
    assert login(client, "carol", "the right password").status_code == 200
    assert (
        client.post(
            "/api/login", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )


def test_uploads_are_rate_limited_per_caller(tmp_path: Path) -> None:
    deployment = Deployment(tmp_path, uploads_per_minute=2)
    try:
        client = deployment.client
        image = {"file": ("a.png", png((9, 9, 9)), "image/png")}
        for _ in range(2):
            assert (
                client.post(
                    "/api/images", files=image, headers=deployment.auth("editor")
                ).status_code
                == 202
            )
        limited = client.post("/api/images", files=image, headers=deployment.auth("editor"))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "too many uploads" in limited.json()["detail"]
        admin = client.post("/api/images", files=image, headers=deployment.auth("admin"))
        assert admin.status_code == 202  # another caller has its own allowance
        deployment.monotonic.now += 60.5
        assert (
            client.post("/api/images", files=image, headers=deployment.auth("editor")).status_code
            == 202
        )
    finally:
        deployment.close()


def test_signed_links_open_an_image_until_they_expire(deployment: Deployment) -> None:
    doc_id = deployment.upload()
    other_id = deployment.upload((0, 0, 255))
    client = deployment.client
    answer = client.get(
        f"/api/images/{doc_id}/link", params={"ttl": 60}, headers=deployment.auth("viewer")
    )
    assert answer.status_code == 200, answer.text
    link = answer.json()
    assert link["url"] == "http://127.0.0.1" + link["path"]
    assert link["expires_at"] == "2027-01-15T08:01:00Z"
    assert client.get(link["path"]).content == png((255, 0, 0))  # no other credentials

    thumb = client.get(
        f"/api/images/{doc_id}/link",
        params={"kind": "thumbnail"},
        headers=deployment.auth("viewer"),
    ).json()
    shown = client.get(thumb["path"])
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"

    tampered = link["path"][:-1] + ("0" if link["path"][-1] != "0" else "1")
    assert client.get(tampered).status_code == 401
    later = re.sub(r"expires=(\d+)", lambda m: f"expires={int(m[1]) + 3600}", link["path"])
    assert client.get(later).status_code == 401
    assert client.get(link["path"].replace(doc_id, other_id)).status_code == 401
    assert client.get(link["path"].replace("/content", "")).status_code == 401  # not the metadata

    deployment.clock.now += 59
    assert client.get(link["path"]).status_code == 200
    deployment.clock.now += 2
    expired = client.get(link["path"])
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]

    assert (
        client.get("/api/images/nosuch/link", headers=deployment.auth("viewer")).status_code == 404
    )
    assert (
        client.get(
            f"/api/images/{doc_id}/link", params={"ttl": 0}, headers=deployment.auth("viewer")
        ).status_code
        == 422
    )


def test_link_signer_rejects_tampering_and_respects_its_clock() -> None:
    clock = Clock(100.0)
    signer = LinkSigner(b"k" * 32, clock)
    signed = signer.sign_path("/api/images/abc/content", ttl=10)
    path, query = signed.split("?")
    params = dict(part.split("=") for part in query.split("&"))
    assert params["expires"] == "110"
    assert signer.verify(path, params["expires"], params["signature"])
    assert not signer.verify(path, "111", params["signature"])
    assert not signer.verify("/api/images/abd/content", params["expires"], params["signature"])
    assert not LinkSigner(b"q" * 32, clock).verify(path, params["expires"], params["signature"])
    assert not signer.verify(path, "soon", params["signature"])
    clock.now = 110.0
    assert not signer.verify(path, params["expires"], params["signature"])
    with pytest.raises(ValueError):
        signer.sign_path("/a?b=c", ttl=10)


def test_auto_mode_requires_auth_beyond_loopback(tmp_path: Path) -> None:
    def settings(auth: str, host: str) -> Settings:
        return load_settings(environ={}, data_dir=tmp_path / "d", auth=auth, host=host)

    assert auth_required(settings("auto", "0.0.0.0"))
    assert auth_required(settings("auto", "192.168.1.20"))
    assert not auth_required(settings("auto", "127.0.0.1"))
    assert not auth_required(settings("auto", "::1"))
    assert not auth_required(settings("auto", "localhost"))
    assert auth_required(settings("on", "127.0.0.1"))
    assert not auth_required(settings("off", "0.0.0.0"))
    with pytest.raises(ConfigError, match="auth"):
        auth_required(settings("maybe", "127.0.0.1"))

    for host, status in (("0.0.0.0", 401), ("127.0.0.1", 200)):
        services = Services.from_settings(settings("auto", host))
        try:
            client = TestClient(create_app(services), base_url="http://127.0.0.1")
            assert client.get("/api/search").status_code == status, host
            assert client.get("/api/session").json()["auth_required"] is (status == 401)
        finally:
            services.close()


def test_auth_off_still_refuses_cross_site_writes(services: Services) -> None:
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    assert client.get("/api/session").json()["role"] == "admin"
    image = {"file": ("a.png", png((1, 2, 3)), "image/png")}
    assert (
        client.post(
            "/api/images", files=image, headers={"Sec-Fetch-Site": "cross-site"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/images", files=image, headers={"Sec-Fetch-Site": "same-origin"}
        ).status_code
        == 202
    )


def test_healthz_shows_counts_only_to_callers(deployment: Deployment) -> None:
    anonymous = deployment.client.get("/healthz")
    assert anonymous.status_code == 200
    assert set(anonymous.json()) == {"status", "version"}
    known = deployment.client.get("/healthz", headers=deployment.auth("viewer")).json()
    assert known["documents"] == 0 and "queue" in known


def test_passwords_and_key_secrets_are_stored_only_as_digests(tmp_path: Path) -> None:
    store = AccessStore(tmp_path / "auth.sqlite3")
    store.add_user("dana", "admin", "open sesame 123")
    store.add_user("erin", "viewer", "open sesame 123")
    _key, secret = store.create_key("backup", "viewer")
    raw = sqlite3.connect(tmp_path / "auth.sqlite3")
    hashes = dict(raw.execute("SELECT name, password_hash FROM users").fetchall())
    assert all(h.startswith("scrypt$") and "open sesame" not in h for h in hashes.values())
    assert hashes["dana"] != hashes["erin"]  # per-user salt
    dump = "\n".join(raw.iterdump())
    assert secret not in dump and secret.split("_", 2)[2] not in dump
    raw.close()
    assert store.authenticate("dana", "open sesame 123") is not None
    assert store.authenticate("dana", "open sesame 124") is None
    assert store.authenticate("nobody", "open sesame 123") is None
    assert store.verify_key(secret) is not None and store.has_admin()
    with pytest.raises(Exception, match="at least 8"):
        store.add_user("frank", "viewer", "short")
    with pytest.raises(Exception, match="already exists"):
        store.add_user("dana", "viewer", "whatever long")
    store.close()


def test_secret_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path / "data")
    first = load_secret(settings)
    path = tmp_path / "data" / "secret.key"
    assert len(first) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_secret(settings) == first
    configured = load_settings(environ={}, data_dir=tmp_path / "data", secret_key="from config")
    assert load_secret(configured) == b"from config"


def test_rate_limiter_slides_and_is_thread_safe() -> None:
    clock = Clock(0.0)
    limiter = RateLimiter(100, 60.0, clock)
    allowed = []

    def hammer() -> None:
        allowed.extend(1 for _ in range(50) if limiter.hit("1.2.3.4") is None)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 100
    assert limiter.hit("5.6.7.8") is None  # another client
    clock.now = 30.0
    assert limiter.hit("1.2.3.4") == pytest.approx(30.0)
    clock.now = 60.0
    assert limiter.hit("1.2.3.4") is None
    assert RateLimiter(0).hit("x") is None  # 0 means no limit


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[tuple[str, Deployment]]:
    deployed = Deployment(tmp_path, login_attempts_per_minute=20)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(deployed.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn exited"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", deployed
    server.should_exit = True
    thread.join(timeout=10)
    deployed.close()


def test_real_server_login_csrf_keys_and_links(live_server: tuple[str, Deployment]) -> None:
    url, deployed = live_server
    deployed.access.store.add_user("admin", "admin", "admin password 1")
    with httpx.Client(base_url=url) as anonymous:
        assert anonymous.get("/api/search").status_code == 401
        assert (
            anonymous.post("/api/images", files={"file": ("a.png", png((5, 5, 5)))}).status_code
            == 401
        )
    with httpx.Client(base_url=url) as browser:
        assert login(browser, "admin", "wrong password").status_code == 401
        answer = login(browser, "admin", "admin password 1")
        assert answer.status_code == 200
        csrf = browser.cookies["imagedex_csrf"]
        assert csrf == answer.json()["csrf_token"]
        assert browser.post("/api/keys", json={"name": "k", "role": "editor"}).status_code == 403
        made = browser.post(
            "/api/keys", json={"name": "k", "role": "editor"}, headers={"X-CSRF-Token": csrf}
        )
        assert made.status_code == 201
        key = made.json()["key"]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as script:
        uploaded = script.post(
            "/api/images", files={"file": ("b.png", png((200, 10, 10)), "image/png")}
        )
        assert uploaded.status_code == 202  # API keys need no CSRF token
        Worker(deployed.services, recognizers=[ColourRecognizer()]).run(once=True)
        doc_id = uploaded.json()["id"]
        link = script.get(f"/api/images/{doc_id}/link").json()
        assert link["url"].startswith(url)
        assert script.post("/api/keys", json={"name": "x", "role": "admin"}).status_code == 403
    opened = httpx.get(link["url"])
    assert opened.status_code == 200 and opened.content == png((200, 10, 10))
    deployed.clock.now += deployed.settings.link_ttl + 1
    assert httpx.get(link["url"]).status_code == 401


ACCESS_PATHS = ("/api/login", "/api/logout", "/api/session", "/api/keys", "/api/users", "/link")


def test_access_routes_never_answer_500_to_generated_requests(deployment: Deployment) -> None:
    """Schemathesis requests (bodies, odd credentials from the security schemes) as an admin and
    as nobody: any answer but a server error."""
    import schemathesis

    deployment.access.store.add_user("fuzz", "admin", "fuzz password")
    schema = schemathesis.openapi.from_asgi("/openapi.json", deployment.app)
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if any(op.path.endswith(p) or op.path.startswith(p) for p in ACCESS_PATHS)
    ]
    assert len(operations) >= 9
    for operation in operations:
        for role in ("admin", None):
            fuzz(operation, deployment.auth(role) if role else {})


def fuzz(operation: Any, headers: dict[str, str]) -> None:
    from hypothesis import HealthCheck, given, settings

    @given(case=operation.as_strategy())
    @settings(
        max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def call(case: Any) -> None:
        response = case.call(headers=headers)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )

    call()


def test_s3_content_redirects_to_a_presigned_url_lasting_link_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    from urllib.parse import parse_qs, urlsplit

    import boto3

    from imagedex import aws as aws_module
    from imagedex.ingest.events import make_notification
    from services import MotoServer

    moto = MotoServer()
    try:
        for name, value in moto.aws_env().items():
            monkeypatch.setenv(name, value)
        aws_module.client.cache_clear()
        boto3.client("s3", endpoint_url=moto.url).create_bucket(Bucket="shots")
        deployment = Deployment(tmp_path, store="s3://shots", link_ttl=900)
        try:
            info = deployment.services.store.put("a/red.png", png((250, 0, 0)), "image/png")
            event = make_notification("created", info.bucket, info.key, info.size, info.etag)
            deployment.services.queue.send(json.dumps(event))
            Worker(deployment.services, recognizers=[ColourRecognizer()]).run(once=True)
            (hit,) = deployment.client.get("/api/search", headers=deployment.auth("viewer")).json()[
                "hits"
            ]
            link = deployment.client.get(
                f"/api/images/{hit['id']}/link", headers=deployment.auth("viewer")
            ).json()
            redirect = deployment.client.get(link["path"], follow_redirects=False)
            assert redirect.status_code == 307
            location = redirect.headers["location"]
            assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["900"]
            assert httpx.get(location).content == png((250, 0, 0))
        finally:
            deployment.close()
    finally:
        moto.stop()
        aws_module.client.cache_clear()
