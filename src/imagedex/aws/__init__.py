"""boto3 clients from the standard chain (env, profile, AWS_ENDPOINT_URL) with sane retries."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

RETRY_CONFIG = {"max_attempts": 8, "mode": "standard"}


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@lru_cache(maxsize=16)
def client(service: str) -> Any:
    """A cached boto3 client; region, credentials and endpoint come from boto3's usual settings."""
    import boto3
    from botocore.config import Config

    extra = {"signature_version": "s3v4"} if service == "s3" else {}  # SigV4 presigned URLs
    return boto3.session.Session().client(
        service,
        config=Config(retries=RETRY_CONFIG, connect_timeout=5, read_timeout=60, **extra),
    )
