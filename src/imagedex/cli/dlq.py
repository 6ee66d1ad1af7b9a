"""`imagedex dlq`: inspect, retry and purge messages that failed processing."""

import sys
from typing import Any

import click
from rich.table import Table

from imagedex.cli.common import (
    CliContext,
    out,
    pass_ctx,
    print_json,
    print_outcome,
)
from imagedex.errors import ImagedexError


@click.group()
def dlq() -> None:
    """Inspect, retry and purge messages that failed processing."""


def _dead_letter_row(letter: Any) -> dict[str, Any]:
    from imagedex.ingest.events import parse_notification

    try:
        keys = [e.key for e in parse_notification(letter.body)]
    except ImagedexError:
        keys = []
    return {
        "id": letter.id,
        "keys": keys,
        "error": letter.error,
        "receive_count": letter.receive_count,
        "failed_at": letter.failed_at,
        "body": letter.body,
    }


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def dlq_list(ctx: CliContext, limit: int, as_json: bool) -> None:
    """Dead-lettered messages with the reason they failed."""
    rows = [_dead_letter_row(d) for d in ctx.services.queue.dead_letters(limit)]
    if as_json:
        print_json({"total": ctx.services.queue.stats().dead, "messages": rows})
        return
    table = Table(title=f"{len(rows)} dead letter(s)")
    # ids are what `dlq retry` and `dlq purge` take: never cut, however narrow the terminal
    width = max((len(row["id"]) for row in rows), default=2)
    table.add_column("id", no_wrap=True, min_width=width)
    table.add_column("object", overflow="fold")
    table.add_column("receives", justify="right")
    table.add_column("reason", overflow="fold")
    for row in rows:
        table.add_row(row["id"], ", ".join(row["keys"]), str(row["receive_count"]), row["error"])
    out.print(table)


@dlq.command("retry")
@click.argument("ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def dlq_retry(ctx: CliContext, ids: tuple[str, ...], retry_all: bool, as_json: bool) -> None:
    """Send dead letters (the given ids, or --all) back to the queue."""
    if not ids and not retry_all:
        raise click.UsageError("give message ids or --all")
    moved = ctx.services.queue.redrive(None if retry_all else list(ids))
    print_outcome({"retried": moved}, as_json, f"{moved} message(s) sent back to the queue")


@dlq.command("purge")
@click.argument("ids", nargs=-1)
@click.option("--all", "purge_all", is_flag=True, help="Purge every dead letter.")
@click.option("--yes", "-y", is_flag=True, help="Purge without asking (needed when not typed).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def dlq_purge(
    ctx: CliContext, ids: tuple[str, ...], purge_all: bool, yes: bool, as_json: bool
) -> None:
    """Drop dead letters for good (the given ids, or --all); the objects stay in the bucket."""
    if not ids and not purge_all:
        raise click.UsageError("give message ids or --all")
    if ids and purge_all:
        raise click.UsageError("give message ids or --all, not both")
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("purging needs --yes when not run from a terminal")
        what = "every dead letter" if purge_all else f"{len(set(ids))} dead letter(s)"
        click.confirm(f"Purge {what} for good?", abort=True, err=True)
    wanted = sorted(set(ids))
    purged = ctx.services.queue.purge(None if purge_all else wanted)
    missing = 0 if purge_all else len(wanted) - purged
    print_outcome(
        {"purged": purged, "not_found": missing},
        as_json,
        f"{purged} dead letter(s) purged",
    )
    if missing:
        raise click.ClickException(
            f"{missing} of the {len(wanted)} id(s) given named no dead letter (already retried "
            "or purged?); `imagedex dlq list` shows the ids there are"
        )


COMMANDS: list[click.Command] = [dlq]
