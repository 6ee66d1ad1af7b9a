"""`imagedex aws setup` / `status`: bucket, queue + DLQ, and the S3 -> SQS notifications."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from imagedex.aws import error_code
from imagedex.errors import ConfigError
from imagedex.ingest.upload import IMAGE_SUFFIXES

NOTIFICATION_ID_PREFIX = "imagedex-"
EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
DLQ_SUFFIX = "-dlq"
SQS_NAME_MAX = 80

# S3's rules for general purpose bucket names (docs.aws.amazon.com/AmazonS3/latest/userguide/
# bucketnamingrules.html); legacy us-east-1 names with capitals or underscores are not accepted:
# S3 stopped allowing them in 2018 and they do not work with virtual-hosted addressing
_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_QUEUE_CHARS = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class AwsTarget:
    bucket: str
    queue: str
    prefix: str = ""

    @property
    def dlq(self) -> str:
        return f"{self.queue}{DLQ_SUFFIX}"

    def check(self) -> None:
        """Raise `ConfigError` naming the setting and the rule when S3 or SQS would refuse a
        name, before anything is created (AWS would answer with an error halfway through)."""
        problem = bucket_name_problem(self.bucket)
        if problem:
            raise ConfigError(
                f"setting 'store' (IMAGEDEX_STORE): {self.bucket!r} is not a valid S3 bucket name: "
                f"{problem}"
            )
        problem = queue_name_problem(self.queue)
        if problem:
            raise ConfigError(
                f"setting 'queue' (IMAGEDEX_QUEUE): {self.queue!r} is not a valid SQS queue name: "
                f"{problem}"
            )


def bucket_name_problem(name: str) -> str | None:
    """Why S3 would refuse `name` as a new bucket's name, or None."""
    if not 3 <= len(name) <= 63:
        return f"it must be 3 to 63 characters long (it has {len(name)})"
    if not _BUCKET_CHARS.fullmatch(name):
        return (
            "use only lower-case letters, digits, dots and hyphens, beginning and ending with a "
            "letter or digit"
        )
    if ".." in name:
        return "two dots may not be next to each other"
    try:
        ipaddress.IPv4Address(name)
        return "it may not look like an IP address"
    except ValueError:
        pass
    for prefix in _BUCKET_PREFIXES:
        if name.startswith(prefix):
            return f"names beginning with {prefix!r} are reserved"
    for suffix in _BUCKET_SUFFIXES:
        if name.endswith(suffix):
            return f"names ending with {suffix!r} are reserved"
    return None


def queue_name_problem(name: str) -> str | None:
    """Why SQS would refuse `name` (or its dead-letter queue's name, `name-dlq`), or None."""
    if name.endswith(".fifo"):
        return "S3 event notifications cannot go to a FIFO queue: use a standard queue"
    if not _QUEUE_CHARS.fullmatch(name):
        return "use only letters, digits, hyphens and underscores"
    longest = SQS_NAME_MAX - len(DLQ_SUFFIX)
    if len(name) > longest:
        return (
            f"at most {longest} characters, so that its dead-letter queue ({name}{DLQ_SUFFIX}) "
            f"stays within SQS's {SQS_NAME_MAX} (it has {len(name)})"
        )
    return None


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
    target.check()
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
