"""Rekognition's errors as its JSON 1.1 protocol sends them: `__type` and `message` in the body,
the code again in `x-amzn-ErrorType`, and the HTTP status AWS documents for each code, so
botocore raises the same `ClientError` (`error.response["Error"]["Code"]`) as against AWS."""

from __future__ import annotations

import json
import uuid

from starlette.responses import Response

CONTENT_TYPE = "application/x-amz-json-1.1"

#: The HTTP status of each error code, as the Rekognition API reference lists them.
STATUS = {
    "AccessDeniedException": 400,
    "ImageTooLargeException": 400,
    "InvalidImageFormatException": 400,
    "InvalidParameterException": 400,
    "InvalidS3ObjectException": 400,
    "ProvisionedThroughputExceededException": 400,
    "ResourceNotFoundException": 400,
    "ResourceAlreadyExistsException": 400,
    "InvalidPaginationTokenException": 400,
    "ServiceQuotaExceededException": 400,
    "ThrottlingException": 500,  # 5xx, so AWS SDKs retry it with backoff
    "InternalServerError": 500,
    # the AWS JSON protocol's own, before any operation runs
    "SerializationException": 400,
    "UnknownOperationException": 400,
    "MissingAuthenticationTokenException": 403,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
}


class RekognitionError(Exception):
    """An error answered in Rekognition's shape; `code` must be a key of `STATUS`."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        if code not in STATUS:
            raise ValueError(f"unknown Rekognition error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return STATUS[self.code]


def request_id() -> str:
    return str(uuid.uuid4())


def json_response(
    body: dict[str, object], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id(), **(headers or {})},
    )


def error_response(error: RekognitionError) -> Response:
    headers = {"x-amzn-ErrorType": error.code}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return json_response({"__type": error.code, "message": error.message}, error.status, headers)
