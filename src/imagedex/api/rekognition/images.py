"""The `Image` parameter of a request, as Rekognition takes it: `Bytes` (base64 in the JSON) or
an `S3Object` read through the deployment's object store; checked against Rekognition's limits
and formats before anything is decoded."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from imagedex.api.rekognition.errors import RekognitionError
from imagedex.errors import ImageDecodeError, ImagedexError, ObjectNotFoundError
from imagedex.ingest.imaging import DecodedImage, decode_image, sniff_content_type
from imagedex.ingest.pixel_budget import DecodeBusyError
from imagedex.storage.base import ObjectStore, ObjectTooLargeError

MAX_BYTES = 5 * 1024 * 1024  # as Bytes
MAX_S3_BYTES = 15 * 1024 * 1024  # from S3
MIN_SIDE = 80
#: Rekognition reads JPEG and PNG only; imagedex answers the same, so that code tested here
#: behaves the same against AWS (the index itself takes more formats).
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
#: The working size the worker's analyzers get, so answers match what indexing finds.
DECODE_SIZE = (320, 320)
#: Face collections describe faces from a larger picture: a face is sampled into a 150 px chip,
#: and the detector's tiles find small faces only where there are pixels to tile.
FACE_DECODE_SIZE = (1280, 1280)


@dataclass
class RequestImage:
    decoded: DecodedImage
    original: bytes


def _bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise RekognitionError("InvalidParameterException", "Image.Bytes must be base64 text")
    if len(value) > (MAX_BYTES + 2) // 3 * 4:
        raise RekognitionError(
            "ImageTooLargeException", f"Image.Bytes holds more than {MAX_BYTES} bytes"
        )
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RekognitionError("InvalidParameterException", "Image.Bytes is not base64") from None
    if not data:
        raise RekognitionError("InvalidParameterException", "Image.Bytes is empty")
    return data


def _s3(value: Any, store: ObjectStore) -> bytes:
    if not isinstance(value, dict) or not isinstance(value.get("Name"), str):
        raise RekognitionError(
            "InvalidParameterException", "Image.S3Object needs Bucket and Name strings"
        )
    bucket, name = value.get("Bucket"), value["Name"]
    if bucket != store.bucket:
        raise RekognitionError(
            "InvalidS3ObjectException",
            f"bucket {bucket!r} is not this deployment's; imagedex reads only {store.bucket!r}",
        )
    if value.get("Version"):
        raise RekognitionError(
            "InvalidS3ObjectException", "object versions are not supported; leave Version out"
        )
    try:
        info = store.head(name)
        if info.size > MAX_S3_BYTES:
            raise ObjectTooLargeError.of(name, info.size, MAX_S3_BYTES)
        return store.read(name, MAX_S3_BYTES)
    except ObjectTooLargeError:
        raise RekognitionError(
            "ImageTooLargeException", f"s3://{bucket}/{name} holds more than {MAX_S3_BYTES} bytes"
        ) from None
    except (ObjectNotFoundError, ImagedexError) as exc:  # missing object, invalid key
        raise RekognitionError(
            "InvalidS3ObjectException", f"cannot read s3://{bucket}/{name}: {exc}"
        ) from None
    except Exception as exc:  # the store is down: not the caller's doing
        raise RekognitionError(
            "InternalServerError", f"the object store did not answer: {type(exc).__name__}"
        ) from None


def load_image(
    params: dict[str, Any],
    store: ObjectStore,
    max_pixels: int,
    draft_size: tuple[int, int] = DECODE_SIZE,
) -> RequestImage:
    image = params.get("Image")
    if not isinstance(image, dict) or len(image.keys() & {"Bytes", "S3Object"}) != 1:
        raise RekognitionError(
            "InvalidParameterException", "Image needs exactly one of Bytes and S3Object"
        )
    data = _bytes(image["Bytes"]) if "Bytes" in image else _s3(image["S3Object"], store)
    kind = sniff_content_type(data)
    if kind not in FORMATS:
        raise RekognitionError(
            "InvalidImageFormatException",
            f"Rekognition takes JPEG and PNG images; this is {kind or 'not an image'}",
        )
    try:
        decoded = decode_image(data, max_pixels=max_pixels, draft_size=draft_size)
    except DecodeBusyError as exc:
        raise RekognitionError(
            "ThrottlingException", f"too many images decoding at once: {exc}", exc.retry_after
        ) from None
    except ImageDecodeError as exc:
        code = (
            "ImageTooLargeException"
            if str(exc).startswith("image is too large")  # over max_pixels
            else "InvalidImageFormatException"
        )
        raise RekognitionError(code, f"cannot decode: {exc}") from None
    if min(decoded.width, decoded.height) < MIN_SIDE:
        raise RekognitionError(
            "InvalidParameterException",
            f"the image is {decoded.width}x{decoded.height}; Rekognition needs at least "
            f"{MIN_SIDE} pixels on each side",
        )
    return RequestImage(decoded, data)
