"""`imagedex aws setup` / `status`: bucket, queue + DLQ, and the S3 -> SQS notifications."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from imagedex.aws import error_code
from imagedex.ingest.upload import IMAGE_SUFFIXES

NOTIFICATION_ID_PREFIX = "imagedex-"
EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class AwsTarget:
    bucket: str
    queue: str
    prefix: str = ""

    @property
    def dlq(self) -> str:
        return f"{self.queue}-dlq"


def _suffixes() -> list[str]:
    """S3 suffix filters are case-sensitive: one rule per spelling we accept."""
    found = set()
    for suffix in IMAGE_SUFFIXES:
        found.update({suffix, suffix.upper()})
    return sorted(found)


def _ensure_bucket(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except Exception as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = s3.meta.region_name
    if region and region != "us-east-1":
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    else:
        s3.create_bucket(Bucket=bucket)
    return True


def _ensure_queue(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    try:
        url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except sqs.exceptions.QueueDoesNotExist:
        return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def _queue_arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def setup(
    target: AwsTarget,
    s3: Any,
    sqs: Any,
    max_receive_count: int = 3,
    visibility_timeout: int = 60,
) -> dict[str, Any]:
    """Create or update everything; running it again changes nothing that is already right."""
    created_bucket = _ensure_bucket(s3, target.bucket)
    dlq_url = _ensure_queue(sqs, target.dlq, {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
    dlq_arn = _queue_arn(sqs, dlq_url)
    queue_url = _ensure_queue(
        sqs,
        target.queue,
        {
            "VisibilityTimeout": str(visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )
    queue_arn = _queue_arn(sqs, queue_url)
    bucket_arn = f"arn:aws:s3:::{target.bucket}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "imagedex-s3-notifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": bucket_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})

    current = s3.get_bucket_notification_configuration(Bucket=target.bucket)
    current.pop("ResponseMetadata", None)
    others = [
        c
        for c in current.get("QueueConfigurations", [])
        if not str(c.get("Id", "")).startswith(NOTIFICATION_ID_PREFIX)
    ]
    ours = []
    for suffix in _suffixes():
        rules = [{"Name": "suffix", "Value": suffix}]
        if target.prefix:
            rules.append({"Name": "prefix", "Value": target.prefix})
        ours.append(
            {
                "Id": f"{NOTIFICATION_ID_PREFIX}{suffix.lstrip('.')}",
                "QueueArn": queue_arn,
                "Events": EVENTS,
                "Filter": {"Key": {"FilterRules": rules}},
            }
        )
    config = {k: v for k, v in current.items() if k != "QueueConfigurations"}
    config["QueueConfigurations"] = others + ours
    s3.put_bucket_notification_configuration(Bucket=target.bucket, NotificationConfiguration=config)
    return {
        "bucket": target.bucket,
        "bucket_created": created_bucket,
        "queue_url": queue_url,
        "dead_letter_queue_url": dlq_url,
        "max_receive_count": max_receive_count,
        "visibility_timeout": visibility_timeout,
        "notification_rules": len(ours),
        "suffixes": _suffixes(),
    }


def status(target: AwsTarget, s3: Any, sqs: Any) -> dict[str, Any]:
    from imagedex.queue.sqs import SqsQueue

    queue = SqsQueue(target.queue, client=sqs)
    stats = queue.stats()
    current = s3.get_bucket_notification_configuration(Bucket=target.bucket)
    rules = [
        c
        for c in current.get("QueueConfigurations", [])
        if str(c.get("Id", "")).startswith(NOTIFICATION_ID_PREFIX)
    ]
    return {
        "bucket": target.bucket,
        "queue_url": queue.url,
        "dead_letter_queue_url": queue.dlq_url,
        "max_receive_count": queue.max_receive_count,
        "visible": stats.visible,
        "in_flight": stats.in_flight,
        "dead": stats.dead,
        "notification_rules": len(rules),
    }
