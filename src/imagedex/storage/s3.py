"""Amazon S3 (or any S3-compatible store) as the object store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote, urlparse

from imagedex.errors import ConfigError
from imagedex.storage.base import ObjectInfo, ObjectStore, ObjectTooLargeError

PRESIGNED_URL_SECONDS = 3600
_CHUNK = 1 << 20


def _missing(exc: Exception) -> bool:
    from imagedex.aws import error_code

    return error_code(exc) in ("404", "NoSuchKey", "NotFound")


def _total_size(response: dict[str, Any]) -> int:
    """The whole object's size: from Content-Range ("bytes 0-99/1234") of a ranged answer."""
    content_range = str(response.get("ContentRange") or "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    return int(response.get("ContentLength", 0))


class S3ObjectStore(ObjectStore):
    """Objects in one bucket. S3 itself notifies the queue of changes (see `imagedex aws setup`),
    so uploads through imagedex emit no events of their own here."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        from imagedex.aws import client as aws_client

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or aws_client("s3")

    def _put(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str]
    ) -> ObjectInfo:
        extra: dict[str, Any] = {}
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            # S3 user metadata must be ASCII: keep non-ASCII titles percent-encoded
            extra["Metadata"] = {k: quote(v, safe=" ") for k, v in metadata.items()}
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        return self.head(key)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey as exc:
            raise self._not_found(key) from exc
        body = response["Body"]
        try:
            return b"".join(iter(lambda: body.read(_CHUNK), b""))
        finally:
            body.close()

    def read(self, key: str, max_bytes: int) -> bytes:
        """Refused from ContentLength before the body is read; never more than `max_bytes` + 1
        bytes read (a Range request keeps even a lying length from costing more)."""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}"
            )
        except self.client.exceptions.NoSuchKey as exc:
            raise self._not_found(key) from exc
        body = response["Body"]
        try:
            total = _total_size(response)
            if total > max_bytes:
                raise ObjectTooLargeError.of(key, total, max_bytes)
            chunks: list[bytes] = []
            size = 0
            while size <= max_bytes and (chunk := body.read(min(_CHUNK, max_bytes + 1 - size))):
                chunks.append(chunk)
                size += len(chunk)
        finally:
            body.close()
        if size > max_bytes:
            raise ObjectTooLargeError.of(key, size, max_bytes)
        return b"".join(chunks)

    def head(self, key: str) -> ObjectInfo:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _missing(exc):
                raise self._not_found(key) from exc
            raise
        return ObjectInfo(
            bucket=self.bucket,
            key=key,
            size=int(response.get("ContentLength", 0)),
            etag=str(response.get("ETag", "")).strip('"'),
            content_type=str(response.get("ContentType", "")),
            last_modified=response["LastModified"].isoformat()
            if "LastModified" in response
            else "",
            metadata={k: unquote(v) for k, v in (response.get("Metadata") or {}).items()},
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    bucket=self.bucket,
                    key=item["Key"],
                    size=int(item.get("Size", 0)),
                    etag=str(item.get("ETag", "")).strip('"'),
                    content_type="",
                    last_modified=item["LastModified"].isoformat(),
                )

    def emits_events(self) -> bool:
        return True

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def presigned_url(self, key: str, expires: int = PRESIGNED_URL_SECONDS) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
            )
        )


def open_url(url: str) -> S3ObjectStore:
    """The store for an `s3://bucket[/prefix]` URL."""
    parsed = urlparse(url)
    if not parsed.netloc:
        raise ConfigError(f"object store URL {url!r} names no bucket")
    return S3ObjectStore(parsed.netloc, prefix=unquote(parsed.path))
