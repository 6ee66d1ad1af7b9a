"""AWS Signature Version 4, verified on the server side, for callers that sign with an imagedex
API key.

imagedex keeps only a SHA-256 digest of an API key's secret, and SigV4 needs the secret itself
on both sides (it is an HMAC key, never sent). So the secret a SigV4 client signs with is not the
API key's secret but one derived from it by the server: HMAC-SHA256 of the key's id under the
deployment's secret (`secret_key`, else `$DATA_DIR/secret.key`). The server recomputes it for any
key id, nothing new is stored, a copy of `auth.sqlite3` alone still lets nobody sign, revoking
the key ends its SigV4 use too, and changing the deployment secret changes every derived one.
Whoever holds the API key obtains its SigV4 secret from `GET /rekognition/credentials`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote

from imagedex.api.rekognition.errors import RekognitionError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "rekognition"
#: How far a request's X-Amz-Date may be from the server's clock, as AWS allows.
MAX_SKEW_SECONDS = 15 * 60
_DERIVATION = b"imagedex sigv4 secret v1\x00"
_AUTH_FIELD = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]+)")
_SPACES = re.compile(r"\s+")


def derived_secret(deployment_secret: bytes, key_id: str) -> str:
    """The SigV4 secret access key of the API key `key_id` (see the module doc)."""
    digest = hmac.new(deployment_secret, _DERIVATION + key_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Authorization:
    """What an `Authorization: AWS4-HMAC-SHA256 ...` header says."""

    access_key: str
    date: str  # YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def is_sigv4(header: str) -> bool:
    return header.strip().startswith(ALGORITHM + " ")


def parse_authorization(header: str) -> Authorization:
    fields = dict(_AUTH_FIELD.findall(header))
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise RekognitionError(
            "InvalidSignatureException",
            "the Authorization header needs Credential=, SignedHeaders= and Signature=",
        )
    parts = fields["Credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]):
        raise RekognitionError(
            "InvalidSignatureException",
            "Credential must be ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
        )
    return Authorization(
        access_key=parts[0],
        date=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=tuple(fields["SignedHeaders"].lower().split(";")),
        signature=fields["Signature"].lower(),
    )


def canonical_path(raw_path: str) -> str:
    """The path as botocore signs it for services other than S3: dot segments removed, each
    character other than unreserved ones and `/` percent-encoded once."""
    path = unquote(raw_path) or "/"
    normal = posixpath.normpath(path)
    if path.endswith("/") and normal != "/":
        normal += "/"
    return quote(normal, safe="/~")


def canonical_query(query: str) -> str:
    pairs = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
        for k, v in parse_qsl(query, keep_blank_values=True)
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def string_to_sign(
    auth: Authorization,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, Sequence[str]],
    body: bytes,
    amz_date: str,
) -> str:
    canonical_headers = "".join(
        f"{name}:{','.join(_SPACES.sub(' ', v.strip()) for v in headers.get(name, ()))}\n"
        for name in auth.signed_headers
    )
    canonical = "\n".join(
        (
            method.upper(),
            canonical_path(raw_path),
            canonical_query(query),
            canonical_headers,
            ";".join(auth.signed_headers),
            hashlib.sha256(body).hexdigest(),
        )
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return "\n".join((ALGORITHM, amz_date, auth.scope, digest))


def signature(secret: str, auth: Authorization, text: str) -> str:
    key = ("AWS4" + secret).encode()
    for part in (auth.date, auth.region, auth.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def check_time(amz_date: str, auth: Authorization, now: float) -> None:
    try:
        moment = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise RekognitionError(
            "InvalidSignatureException", "X-Amz-Date must be YYYYMMDDTHHMMSSZ"
        ) from None
    if not amz_date.startswith(auth.date):
        raise RekognitionError(
            "InvalidSignatureException", "the Credential date is not the X-Amz-Date's"
        )
    if abs(moment.timestamp() - now) > MAX_SKEW_SECONDS:
        raise RekognitionError(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is more than 15 minutes from the server's time "
            f"{datetime.fromtimestamp(now, UTC).strftime('%Y%m%dT%H%M%SZ')}; check the clock",
        )


def verify(
    header: str,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, Sequence[str]],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: float,
) -> str:
    """The access key that signed this request; RekognitionError when the signature is not
    valid. `secret_for(access_key)` gives the key's SigV4 secret, None for unknown keys."""
    auth = parse_authorization(header)
    if auth.service != SERVICE:
        raise RekognitionError(
            "InvalidSignatureException",
            f"the request is signed for {auth.service!r}, not rekognition",
        )
    if "host" not in auth.signed_headers:
        raise RekognitionError("InvalidSignatureException", "the Host header must be signed")
    amz_date = next(iter(headers.get("x-amz-date", ())), "")
    if "x-amz-date" not in auth.signed_headers:
        raise RekognitionError("InvalidSignatureException", "X-Amz-Date must be sent and signed")
    check_time(amz_date, auth, now)
    secret = secret_for(auth.access_key)
    if secret is None:
        raise RekognitionError(
            "UnrecognizedClientException",
            f"the access key {auth.access_key!r} is not a live imagedex API key id",
        )
    text = string_to_sign(auth, method, raw_path, query, headers, body, amz_date)
    if not hmac.compare_digest(signature(secret, auth, text), auth.signature):
        raise RekognitionError(
            "InvalidSignatureException",
            "the request signature does not match: sign with the key id as access key and the "
            "SigV4 secret from GET /rekognition/credentials (not the API key's own secret)",
        )
    return auth.access_key
