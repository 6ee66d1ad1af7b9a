"""`imagedex keys` / `imagedex users` through the real command, and `imagedex up` with auth on."""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli_helpers import cli_json, free_port, imagedex_env, run_cli
from imagedex.cli.access import warn_about_access
from imagedex.config import load_settings


def run_with_input(env: dict[str, str], text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagedex.cli.main", *args],
        env=env,
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data")
    created = cli_json(env, "keys", "create", "--name", "nightly backup", "--role", "viewer")
    assert created["role"] == "viewer" and created["key"].startswith(f"idx_{created['id']}_")
    plain = run_cli(env, "keys", "create", "--name", "uploader", "--role", "editor")
    assert plain.stdout.strip().startswith("idx_") and len(plain.stdout.strip().splitlines()) == 1
    assert "not shown again" in plain.stderr

    listed = cli_json(env, "keys", "list")
    assert [k["name"] for k in listed] == ["nightly backup", "uploader"]
    assert all("key" not in k for k in listed) and created["key"] not in json.dumps(listed)
    text = run_cli(env, "keys", "list").stdout
    assert "nightly backup" in text and "active" in text and created["key"] not in text

    run_cli(env, "keys", "revoke", created["id"])
    (revoked,) = [k for k in cli_json(env, "keys", "list") if k["id"] == created["id"]]
    assert revoked["revoked_at"] is not None
    assert [k["name"] for k in cli_json(env, "keys", "list", "--active")] == ["uploader"]
    again = run_cli(env, "keys", "revoke", created["id"], check=False)
    assert again.returncode != 0 and "already revoked" in again.stderr
    unknown = run_cli(env, "keys", "revoke", "nosuch", check=False)
    assert unknown.returncode != 0 and "no API key" in unknown.stderr
    bad_role = run_cli(env, "keys", "create", "--name", "x", "--role", "root", check=False)
    assert bad_role.returncode != 0 and "root" in bad_role.stderr


def test_users_add_list_passwd_remove(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data")
    added = run_with_input(
        env, "a long password\n", "users", "add", "ann", "--role", "admin", "--password-stdin"
    )
    assert added.returncode == 0, added.stderr
    prompted = run_with_input(
        env, "second password\nsecond password\n", "users", "add", "ben", "--role", "viewer"
    )
    assert prompted.returncode == 0, prompted.stderr
    mismatch = run_with_input(
        env, "one password\nanother one\n", "users", "add", "cy", "--role", "viewer"
    )
    assert mismatch.returncode != 0 and "do not match" in mismatch.stderr
    short = run_with_input(
        env, "short\n", "users", "add", "dee", "--role", "viewer", "--password-stdin"
    )
    assert short.returncode != 0 and "at least 8" in short.stderr
    twice = run_with_input(
        env, "a long password\n", "users", "add", "ann", "--role", "viewer", "--password-stdin"
    )
    assert twice.returncode != 0 and "already exists" in twice.stderr
    odd = run_with_input(
        env, "a long password\n", "users", "add", "../x", "--role", "viewer", "--password-stdin"
    )
    assert odd.returncode != 0 and "not allowed" in odd.stderr

    users = cli_json(env, "users", "list")
    assert [(u["name"], u["role"]) for u in users] == [("ann", "admin"), ("ben", "viewer")]
    assert "second password" not in (tmp_path / "data" / "auth.sqlite3").read_bytes().decode(
        "latin-1"
    )

    from imagedex.access.store import AccessStore

    store = AccessStore.open(load_settings(environ={}, data_dir=tmp_path / "data"))
    assert store.authenticate("ben", "second password") is not None
    changed = run_with_input(env, "third password\n", "users", "passwd", "ben", "--password-stdin")
    assert changed.returncode == 0, changed.stderr
    assert store.authenticate("ben", "second password") is None
    assert store.authenticate("ben", "third password") is not None
    run_cli(env, "users", "remove", "ben")
    assert [u["name"] for u in cli_json(env, "users", "list")] == ["ann"]
    gone = run_cli(env, "users", "remove", "ben", check=False)
    assert gone.returncode != 0 and "no user named 'ben'" in gone.stderr
    nobody = run_with_input(env, "whatever pw\n", "users", "passwd", "zed", "--password-stdin")
    assert nobody.returncode != 0 and "no user named" in nobody.stderr
    store.close()


def test_up_hint_depends_on_whether_an_admin_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path / "data", auth="on")
    warn_about_access(settings)
    assert "imagedex users add admin --role admin" in capsys.readouterr().err
    from imagedex.access.store import AccessStore

    store = AccessStore.open(settings)
    store.add_user("root", "admin", "an admin password")
    store.close()
    warn_about_access(settings)
    assert capsys.readouterr().err == ""
    warn_about_access(settings.with_overrides(auth="off", host="0.0.0.0"))
    assert "auth = off" in capsys.readouterr().err
    warn_about_access(settings.with_overrides(auth="auto", host="127.0.0.1"))
    assert capsys.readouterr().err == ""


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """`imagedex up` with auth on, on a loopback port; its stderr goes to a file."""
    env = imagedex_env(tmp_path / "data", IMAGEDEX_AUTH="on", IMAGEDEX_SCHEDULER="false")
    port = free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imagedex.cli.main",
                "up",
                "--no-worker",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1)
            break
        except httpx.HTTPError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "imagedex up did not answer"
            time.sleep(0.1)
    yield url, env, log
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def test_up_with_auth_on_serves_only_keys_the_cli_made(
    served: tuple[str, dict[str, str], Path],
) -> None:
    url, env, log = served
    assert "imagedex users add admin --role admin" in log.read_text()
    assert httpx.get(url + "/api/search").status_code == 401
    assert set(httpx.get(url + "/healthz").json()) == {"status", "version"}
    key = cli_json(env, "keys", "create", "--name", "ops", "--role", "admin")
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert httpx.get(url + "/api/search", headers=headers).status_code == 200
    assert httpx.get(url + "/healthz", headers=headers).json()["documents"] == 0
    made = httpx.post(
        url + "/api/users",
        json={"name": "eve", "role": "viewer", "password": "eve's password"},
        headers=headers,
    )
    assert made.status_code == 201 and made.json()["name"] == "eve"
    assert [u["name"] for u in cli_json(env, "users", "list")] == ["eve"]
    run_cli(env, "keys", "revoke", key["id"])
    assert httpx.get(url + "/api/search", headers=headers).status_code == 401  # at once
