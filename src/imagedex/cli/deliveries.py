"""`imagedex deliveries`: the history of mails, Slack messages, webhooks and folder drops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from imagedex.cli.common import CliContext, out, pass_ctx, print_json, print_table

if TYPE_CHECKING:
    from imagedex.notify import Delivery


@click.group(invoke_without_command=True)
@click.option("--source", help="Only this source (e.g. report:weekly, or report: for all reports).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_ctx
@click.pass_context
def deliveries(
    click_ctx: click.Context, ctx: CliContext, source: str | None, limit: int, as_json: bool
) -> None:
    """Show recent deliveries, newest first, with their status and last error.

    Status is queued, retrying (waiting for the next attempt), sent or failed. Targets are shown
    without their secret parts.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    from imagedex.notify import Outbox

    outbox = Outbox.open(ctx.settings)
    try:
        rows = outbox.history(source, limit)
    finally:
        outbox.close()
    print_table(
        rows,
        as_json,
        [row.to_dict() for row in rows],
        ("id", "created", "source", "target", "subject", "status", "tries", "last error"),
        _cells,
        empty="no deliveries yet",
    )


def _cells(row: Delivery) -> tuple[str, ...]:
    return (
        row.id[:12],
        row.created_at[:19],
        row.source,
        row.target,
        row.subject,
        row.status,
        str(row.attempts),
        row.last_error or "",
    )


@deliveries.command("retry")
@click.argument("delivery_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_ctx
def retry(ctx: CliContext, delivery_id: str, as_json: bool) -> None:
    """Queue a failed delivery again (sent by `imagedex up` within seconds).

    DELIVERY_ID is the full id or a unique prefix of it, as `imagedex deliveries` shows.
    """
    from imagedex.notify import DeliveryError, Outbox

    outbox = Outbox.open(ctx.settings)
    try:
        matches = [d.id for d in outbox.history(limit=100_000) if d.id.startswith(delivery_id)]
        if len(matches) > 1:
            raise click.ClickException(f"{delivery_id!r} matches {len(matches)} deliveries")
        try:
            delivery = outbox.retry(matches[0] if matches else delivery_id)
        except DeliveryError as exc:
            raise click.ClickException(str(exc)) from exc
    finally:
        outbox.close()
    if as_json:
        print_json(delivery.to_dict())
    else:
        out.print(f"delivery {delivery.id} queued again for {delivery.target}")


COMMANDS: list[click.Command] = [deliveries]
