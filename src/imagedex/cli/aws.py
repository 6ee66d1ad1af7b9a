"""`imagedex aws`: set up and inspect the S3 -> SQS path."""

from typing import Any

import click

from imagedex.cli.common import (
    CliContext,
    pass_ctx,
    print_fields,
)
from imagedex.config import Settings


@click.group()
def aws() -> None:
    """Set up and inspect the AWS path (S3 bucket -> SQS queue -> workers).

    Uses IMAGEDEX_STORE=s3://BUCKET and IMAGEDEX_QUEUE=sqs://QUEUE, and boto3's usual settings
    (AWS_DEFAULT_REGION, credentials, AWS_ENDPOINT_URL for S3-compatible stores or moto).
    """


def _aws_target(settings: Settings) -> Any:
    from urllib.parse import urlparse

    from imagedex.aws.setup import AwsTarget

    store = urlparse(settings.store_url)
    if store.scheme != "s3" or not store.netloc:
        raise click.UsageError("set IMAGEDEX_STORE=s3://BUCKET[/prefix] for the AWS path")
    if not settings.queue.startswith("sqs://"):
        raise click.UsageError("set IMAGEDEX_QUEUE=sqs://QUEUE-NAME for the AWS path")
    target = AwsTarget(
        bucket=store.netloc,
        queue=settings.queue.removeprefix("sqs://"),
        prefix=store.path.strip("/") + "/" if store.path.strip("/") else "",
    )
    target.check()  # before any call to AWS, which would fail halfway with a traceback
    return target


@aws.command("setup")
@click.option("--max-receive-count", type=click.IntRange(1, 1000), help="Attempts before the DLQ.")
@click.option("--visibility-timeout", type=click.IntRange(1, 43200), help="Seconds.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def aws_setup_command(
    ctx: CliContext, max_receive_count: int | None, visibility_timeout: int | None, as_json: bool
) -> None:
    """Create (idempotently) the bucket, the queue and its DLQ, the queue policy and the
    bucket's event notifications for image files."""
    from imagedex.aws import client
    from imagedex.aws import setup as aws_setup

    settings = ctx.settings
    result = aws_setup.setup(
        _aws_target(settings),
        client("s3"),
        client("sqs"),
        max_receive_count=max_receive_count or settings.max_receive_count,
        visibility_timeout=visibility_timeout or int(settings.visibility_timeout),
    )
    print_fields(result, as_json)


@aws.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def aws_status_command(ctx: CliContext, as_json: bool) -> None:
    """Queue depth, messages in flight and dead letters, and the notification rules."""
    from imagedex.aws import client
    from imagedex.aws import setup as aws_setup

    result = aws_setup.status(_aws_target(ctx.settings), client("s3"), client("sqs"))
    print_fields(result, as_json)


COMMANDS: list[click.Command] = [aws]
