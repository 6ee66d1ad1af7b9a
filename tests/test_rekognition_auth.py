"""Who may call /rekognition: SigV4 with an imagedex API key's id and derived secret, against the
real app with authentication on; rate limits as ThrottlingException."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore import UNSIGNED

from imagedex.access.store import AccessStore, split_key
from imagedex.config import Settings
from imagedex.services import Services
from live_app import live_app
from rekognition_model import RawAnswers
from test_rekognition_api import client, error, png

IMAGE = {"Bytes": png((120, 100))}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("rekognition-auth")
    services = Services.from_settings(Settings(data_dir=data_dir, semantic=False, auth="on"))
    with live_app(services) as url:
        yield url, data_dir
    services.close()


def new_key(data_dir: Path, role: str = "viewer") -> str:
    store = AccessStore.open(Settings(data_dir=data_dir))
    try:
        return store.create_key("notebook", role)[1]
    finally:
        store.close()


def sigv4_credentials(url: str, api_key: str) -> dict[str, str]:
    answer = httpx.get(
        f"{url}/rekognition/credentials", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()


def test_sigv4_with_the_derived_secret_is_accepted(secured: Any) -> None:
    url, data_dir = secured
    api_key = new_key(data_dir)
    credentials = sigv4_credentials(url, api_key)
    key_id, key_secret = split_key(api_key) or ("", "")
    assert credentials["AccessKeyId"] == key_id and credentials["SecretAccessKey"] != key_secret

    c = client(url, credentials["AccessKeyId"], credentials["SecretAccessKey"])
    raw = RawAnswers(c)
    assert c.detect_faces(Image=IMAGE)["FaceDetails"] == []
    raw.check_last()


def test_wrong_unknown_revoked_and_missing_credentials_are_refused(secured: Any) -> None:
    url, data_dir = secured
    api_key = new_key(data_dir)
    credentials = sigv4_credentials(url, api_key)
    key_id, key_secret = split_key(api_key) or ("", "")
    cases = [
        (client(url, key_id, credentials["SecretAccessKey"] + "x"), "InvalidSignatureException"),
        (client(url, key_id, key_secret), "InvalidSignatureException"),  # the key's own secret
        (
            client(url, "0123456789ab", credentials["SecretAccessKey"]),
            "UnrecognizedClientException",
        ),
        (client(url, signature_version=UNSIGNED), "MissingAuthenticationTokenException"),
    ]
    for unsigned_or_wrong, code in cases:
        assert error(lambda c=unsigned_or_wrong: c.detect_faces(Image=IMAGE))[:2] == (code, 403)

    store = AccessStore.open(Settings(data_dir=data_dir))
    store.revoke_key(key_id)
    store.close()
    revoked = client(url, key_id, credentials["SecretAccessKey"])
    assert error(lambda: revoked.detect_faces(Image=IMAGE))[0] == "UnrecognizedClientException"
    refused = httpx.get(
        f"{url}/rekognition/credentials", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert refused.status_code == 401


def test_the_api_key_itself_as_bearer_token(secured: Any) -> None:
    url, data_dir = secured
    answer = httpx.post(
        f"{url}/rekognition",
        headers={
            "Authorization": f"Bearer {new_key(data_dir)}",
            "X-Amz-Target": "RekognitionService.DetectFaces",
            "Content-Type": "application/x-amz-json-1.1",
        },
        json={"Image": {"Bytes": base64.b64encode(IMAGE["Bytes"]).decode()}},
    )
    assert answer.status_code == 200 and answer.json() == {"FaceDetails": []}


def test_calls_beyond_the_rate_limit_are_throttled(tmp_path: Path) -> None:
    services = Services.from_settings(
        Settings(data_dir=tmp_path, semantic=False, uploads_per_minute=2)
    )
    with live_app(services) as url:
        c = client(url)
        bad = {"Bytes": b"not an image at all"}
        for _ in range(2):
            assert error(lambda: c.detect_labels(Image=bad))[0] == "InvalidImageFormatException"
        code, status, message = error(lambda: c.detect_labels(Image=bad))
        assert (code, status) == ("ThrottlingException", 500) and "uploads_per_minute" in message
    services.close()
