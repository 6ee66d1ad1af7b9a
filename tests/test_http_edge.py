"""The HTTP edge under hostile input, against the real app: body limits before anything reads
the body (the real `imagedex up` process, its memory measured), X-Forwarded-For only from
trusted proxies, nosniff and a sandboxing policy on stored files, Origin checked with auth off,
idempotent uploads, clean titles."""

from __future__ import annotations

import select
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cli_helpers import free_port, imagedex_env, start_up
from conftest import ColourRecognizer, png
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.services import Services
from live_app import live_app

MB = 1024 * 1024


@contextmanager
def running_up(tmp_path: Path, **settings: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`imagedex up --no-worker` (the API as deployed) with auth on; its port and process."""
    env = imagedex_env(tmp_path / "data", IMAGEDEX_AUTH="on", **settings)
    port = free_port()
    process = start_up(env, port, "--no-worker")
    deadline = time.monotonic() + 60
    try:
        while True:
            assert process.poll() is None, "imagedex up exited"
            assert time.monotonic() < deadline, "imagedex up did not start"
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=20)


def rss(process: subprocess.Popen[bytes]) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def read_status(sock: socket.socket, timeout: float) -> int:
    """The status code of the answer on `sock` (its status line is enough)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        part = sock.recv(4096)
        assert part, f"the connection closed without an answer: {data!r}"
        data += part
    return int(data.split(b" ", 2)[1])


def post_head(port: int, path: str, extra: str) -> socket.socket:
    kind = "multipart/form-data; boundary=b" if path == "/api/images" else "application/json"
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {kind}\r\n{extra}\r\n".encode()
    )
    return sock


def stream_chunked(port: int, path: str, total: int) -> tuple[int, int]:
    """POST a chunked body of up to `total` bytes, stopping as soon as the server answers;
    the status and how many bytes went out before the answer came."""
    sock = post_head(port, path, "Transfer-Encoding: chunked\r\n")
    start = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    chunk = b" " * (256 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    sock.settimeout(10)
    sock.sendall(f"{len(start):x}\r\n".encode() + start + b"\r\n")
    with sock:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # an answer (or a close) before the body ended
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        else:
            sock.sendall(b"0\r\n\r\n")
        return read_status(sock, 60), sent


def test_bodies_over_the_limit_are_refused_unread_and_memory_stays_flat(tmp_path: Path) -> None:
    with running_up(tmp_path, IMAGEDEX_MAX_UPLOAD_BYTES=str(4 * MB)) as (port, process):
        # a declared length over the limit: 413 at once, not a byte of the body awaited
        for path in ("/api/alerts/x", "/api/images", "/api/login"):
            started = time.monotonic()
            with post_head(port, path, f"Content-Length: {300 * MB}\r\n") as sock:
                assert read_status(sock, 5) == 413, path
            assert time.monotonic() - started < 5
        before = rss(process)
        # no declared length: counted as it streams in, cut off at the limit, before the 401
        status, sent = stream_chunked(port, "/api/alerts/x", 200 * MB)
        assert status == 413
        assert sent < 32 * MB, f"{sent} bytes went out before the answer"
        status, sent = stream_chunked(port, "/api/images", 200 * MB)
        assert status == 413 and sent < 40 * MB
        time.sleep(0.5)
        assert rss(process) - before < 40 * MB, (before, rss(process))
        # bodies within the limit still reach the route (and its authentication)
        answer = httpx.post(f"http://127.0.0.1:{port}/api/alerts/x", json={"label": "cat"})
        assert answer.status_code == 401
        assert answer.headers["x-content-type-options"] == "nosniff"


def login_statuses(port: int, forwarded_for: list[str]) -> list[int]:
    return [
        httpx.post(
            f"http://127.0.0.1:{port}/api/login",
            json={"name": "nobody", "password": "wrong"},
            headers={"X-Forwarded-For": hop},
        ).status_code
        for hop in forwarded_for
    ]


def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    spoofed = [f"10.0.0.{i}" for i in range(1, 6)]
    with running_up(tmp_path / "a", IMAGEDEX_LOGIN_ATTEMPTS_PER_MINUTE="3") as (port, _):
        # from loopback, a new X-Forwarded-For per request is still the same client
        assert login_statuses(port, spoofed) == [401, 401, 401, 429, 429]
    trusted = {"IMAGEDEX_LOGIN_ATTEMPTS_PER_MINUTE": "3", "IMAGEDEX_TRUSTED_PROXIES": "127.0.0.1"}
    with running_up(tmp_path / "b", **trusted) as (port, _):
        assert login_statuses(port, spoofed) == [401] * 5  # five clients behind the proxy
        # what the client wrote left of the proxy's own entry proves nothing
        forged = [f"192.0.2.{i}, 10.9.9.9" for i in range(1, 6)]
        assert login_statuses(port, forged) == [401, 401, 401, 429, 429]


@pytest.fixture
def app_url(services: Services) -> Iterator[str]:
    with live_app(services) as url:
        yield url


def stored_uploads(services: Services) -> list[str]:
    return sorted(info.key for info in services.store.list("uploads/"))


def test_stored_files_are_served_nosniff_and_sandboxed(services: Services, app_url: str) -> None:
    uploaded = httpx.post(f"{app_url}/api/images", files={"file": ("a.png", png((9, 9, 9)))})
    assert uploaded.status_code == 202, uploaded.text
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    image_id = uploaded.json()["id"]
    for path in (f"/api/images/{image_id}/content", f"/api/images/{image_id}/thumbnail"):
        answer = httpx.get(app_url + path)
        assert answer.status_code == 200, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "sandbox" in policy
    search = httpx.get(f"{app_url}/api/search")
    assert search.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" not in search.headers.get("content-security-policy", "")


def test_a_foreign_origin_changes_nothing_with_auth_off(services: Services, app_url: str) -> None:
    image = {"file": ("a.png", png((1, 2, 3)))}
    for origin in ("http://evil.example", "null", "http://127.0.0.1.evil.example"):
        answer = httpx.post(f"{app_url}/api/images", files=image, headers={"Origin": origin})
        assert answer.status_code == 403, (origin, answer.text)
        assert "may not change anything" in answer.json()["detail"]
    assert (
        httpx.delete(
            f"{app_url}/api/images/x", headers={"Origin": "http://evil.example"}
        ).status_code
        == 403
    )
    assert stored_uploads(services) == []
    own = httpx.post(f"{app_url}/api/images", files=image, headers={"Origin": app_url})
    assert own.status_code == 202
    assert httpx.post(f"{app_url}/api/images", files=image).status_code == 202  # no Origin: curl


def test_uploads_with_an_idempotency_key_are_stored_once(services: Services, app_url: str) -> None:
    url = f"{app_url}/api/images"
    image = png((200, 10, 10))
    first = httpx.post(url, files={"file": ("a.png", image)}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202, first.text
    again = httpx.post(url, files={"file": ("a.png", image)}, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert stored_uploads(services) == [first.json()["key"]]
    assert services.queue.stats().visible == 1
    # the key names one request: other bytes, name or title with it are a client's bug
    for files, data in (
        ({"file": ("a.png", png((0, 0, 200)))}, {}),
        ({"file": ("b.png", image)}, {}),
        ({"file": ("a.png", image)}, {"title": "another"}),
    ):
        reused = httpx.post(url, files=files, data=data, headers={"Idempotency-Key": "k1"})
        assert reused.status_code == 422 and "new key" in reused.json()["detail"]
    assert (
        httpx.post(
            url, files={"file": ("a.png", image)}, headers={"Idempotency-Key": "x" * 256}
        ).status_code
        == 400
    )
    # without a key, the same file twice is two uploads (the API cannot tell a retry)
    plain = [httpx.post(url, files={"file": ("a.png", image)}).json()["key"] for _ in range(2)]
    assert len(set(plain)) == 2 and len(stored_uploads(services)) == 3


def test_an_idempotent_upload_in_flight_or_cut_off_is_not_doubled(
    services: Services, app_url: str
) -> None:
    from imagedex.api.idempotency import IdempotencyStore, fingerprint, object_prefix

    url = f"{app_url}/api/images"
    image = png((5, 200, 5))
    # the first request with this key is being handled (begun in the app's own store file)
    store = IdempotencyStore(services.settings.data_dir)
    store.begin("local:local", "busy", fingerprint(image, "a.png", ""))
    busy = httpx.post(url, files={"file": ("a.png", image)}, headers={"Idempotency-Key": "busy"})
    assert busy.status_code == 409 and busy.headers["retry-after"]
    assert stored_uploads(services) == []
    # a first request that died after storing the object: its retry writes that same object
    dead = IdempotencyStore(services.settings.data_dir, clock=lambda: time.time() - 3600)
    dead.begin("local:local", "died", fingerprint(image, "a.png", ""))
    key = f"uploads/{object_prefix('local:local', 'died')}/a.png"
    upload_bytes(services, key, image, title="a.png")
    retry = httpx.post(url, files={"file": ("a.png", image)}, headers={"Idempotency-Key": "died"})
    assert retry.status_code == 202 and retry.json()["key"] == key
    assert stored_uploads(services) == [key]
    pending = httpx.post(url, files={"file": ("a.png", image)}, headers={"Idempotency-Key": "p"})
    assert pending.status_code == 202
    store.close()
    dead.close()


def test_titles_lose_bidi_controls_wherever_they_come_from(
    services: Services, app_url: str
) -> None:
    sent = httpx.post(
        f"{app_url}/api/images",
        files={"file": ("x.png", png((3, 3, 3)))},
        data={"title": "invoice\u202egnp.exe\u202c"},
    ).json()
    assert services.store.head(sent["key"]).metadata["title"] == "invoicegnp.exe"
    # put into the bucket by someone else, with a title in its metadata
    other = upload_bytes(
        services, "elsewhere/y.png", png((4, 4, 4)), title="\u2067left\u2069 to\r\nright\u200f"
    )
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    assert services.index.get(sent["id"]).title == "invoicegnp.exe"
    assert services.index.get(other.doc_id).title == "left to  right"
