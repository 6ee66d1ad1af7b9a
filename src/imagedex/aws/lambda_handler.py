"""AWS Lambda entry point: `imagedex.aws.lambda_handler.handler`.

Two triggers are supported:
- an SQS event source mapping (records with `eventSource: aws:sqs`): every record's body is an
  S3 notification; failed records are reported in `batchItemFailures` (enable
  ReportBatchItemFailures on the mapping) so only they are retried and, after the queue's
  maxReceiveCount, dead-lettered by SQS;
- a direct S3 (or EventBridge) invocation: the event itself is processed; a failure that a retry
  could fix raises, so Lambda's asynchronous retries and on-failure destination apply.

Settings come from the function's environment (IMAGEDEX_STORE, IMAGEDEX_INDEX, ...), read once
per container; the models load once per container too.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from imagedex.config import load_settings
from imagedex.ingest.pipeline import Pipeline, describe
from imagedex.queue.base import Message
from imagedex.services import Services

log = logging.getLogger("imagedex.lambda")

_pipeline: Pipeline | None = None


def _get_pipeline() -> Pipeline:
    global _pipeline
    if _pipeline is None:
        services = Services.from_settings(load_settings())
        _pipeline = Pipeline(services, services.recognizers(), services.enrichers())
    return _pipeline


def reset() -> None:
    """Forget the cached pipeline (a new container; used by tests that change settings)."""
    global _pipeline
    _pipeline = None


def _sqs_messages(records: list[dict[str, Any]]) -> list[Message]:
    return [
        Message(
            id=str(r.get("messageId", "")),
            body=str(r.get("body", "")),
            receipt=str(r.get("receiptHandle", "")),
            receive_count=int((r.get("attributes") or {}).get("ApproximateReceiveCount", 1)),
            sent_at=int((r.get("attributes") or {}).get("SentTimestamp", 0)) / 1000,
        )
        for r in records
    ]


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    pipeline = _get_pipeline()
    records = event.get("Records") if isinstance(event, dict) else None
    if records and all(r.get("eventSource") == "aws:sqs" for r in records):
        messages = _sqs_messages(records)
        outcomes = pipeline.complete([pipeline.prepare(m) for m in messages])
        failures = []
        for outcome in outcomes:
            if outcome.error is not None:
                log.error("message %s failed: %s", outcome.message.id, describe(outcome.error))
                failures.append({"itemIdentifier": outcome.message.id})
        return {"batchItemFailures": failures}
    request_id = str(getattr(context, "aws_request_id", "") or f"direct-{time.time():.6f}")
    message = Message(request_id, json.dumps(event), "", 1, time.time())
    (outcome,) = pipeline.complete([pipeline.prepare(message)])
    if outcome.error is not None:
        reason = describe(outcome.error)
        if not outcome.permanent:
            raise RuntimeError(f"imagedex could not process the event: {reason}")
        log.error("event dropped, it can never succeed: %s", reason)
        return {"status": "failed", "reason": reason}
    return {
        "status": "ok",
        "indexed": outcome.indexed,
        "unchanged": outcome.unchanged,
        "removed": outcome.removed,
    }
