"""`imagedex report ...`: define, list, run and preview scheduled reports."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from imagedex.cli.common import (
    CliContext,
    console,
    name_command,
    out,
    pass_ctx,
    print_fields,
    print_json,
    print_table,
)

FORMAT_CHOICES = ("pdf", "xlsx", "png", "csv")


def _definition_options(creating: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options `create` and `update` share; on update every one is optional (None = keep)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option("--title", help="Shown on the report and in the mail subject."),
            click.option(
                "--query",
                help="Search syntax, e.g. 'label:dog confidence>=80 after:2026-01-01' "
                "(empty: every image).",
            ),
            click.option(
                "--source",
                type=click.Choice(["search", "dashboard"]),
                help="'dashboard' adds the ingest health (queue, throughput) to the report.",
            ),
            click.option(
                "--format",
                "formats",
                multiple=True,
                type=click.Choice(FORMAT_CHOICES),
                help="Attachment format; repeat for several"
                + (" [default: pdf]." if creating else "."),
            ),
            click.option(
                "--schedule",
                help="hourly, daily, daily@08:00, weekly@mon 08:00, monthly@1 08:00 or a 5-field "
                "cron expression; empty: only on demand.",
            ),
            click.option("--timezone", help="IANA zone of the schedule [default: settings]."),
            click.option(
                "--window",
                help="Period each run covers, ending at the scheduled time: 24h, 7d, 2w, 30m "
                "or 'all'.",
            ),
            click.option(
                "--to",
                "recipients",
                multiple=True,
                help="Recipient; repeat for several: mailto:a@x.org, slack:https://hooks..., "
                "webhook:https://..., folder:/path." + ("" if creating else " Replaces the list."),
            ),
            click.option("--max-rows", type=int, help="Images listed in the table [default: 100]."),
            click.option("--enable/--disable", "enabled", default=None, help="Pause or resume."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _changes(**values: Any) -> dict[str, Any]:
    changes = {k: v for k, v in values.items() if v is not None and v != ()}
    for key in ("formats", "recipients"):
        if key in changes:
            changes[key] = tuple(changes[key])
    return changes


def _summary(report: Any, next_run: str | None) -> dict[str, Any]:
    data: dict[str, Any] = report.redacted()
    data["next_run"] = next_run
    return data


def _print_report(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    shown = dict(data)
    shown["formats"] = ", ".join(data["formats"])
    shown["recipients"] = ", ".join(data["recipients"]) or "(none)"
    shown["schedule"] = data["schedule"] or "(on demand only)"
    print_fields(shown, as_json=False)


@click.group("report")
def report_group() -> None:
    """Scheduled reports: a search or the dashboard as PDF, XLSX, PNG or CSV, sent by e-mail,
    Slack, webhook or into a folder."""


@report_group.command("create")
@click.argument("name")
@_definition_options(creating=True)
@click.option("--json", "as_json", is_flag=True, help="Print the saved report as JSON.")
@pass_ctx
def create(ctx: CliContext, name: str, as_json: bool, **values: Any) -> None:
    """Define report NAME (a slug: letters, digits, - and _).

    Example: imagedex report create weekly-dogs --query 'label:dog' --format pdf --format xlsx
    --schedule 'weekly@mon 08:00' --timezone Europe/Paris --window 7d --to mailto:a@x.org
    """
    from imagedex.reports.jobs import next_run
    from imagedex.reports.manage import create_report
    from imagedex.reports.model import Report

    changes = _changes(**values)
    changes.setdefault("timezone", ctx.settings.timezone)
    report = create_report(ctx.settings, Report(name=name, **changes))
    _print_report(_summary(report, next_run(ctx.settings, name)), as_json)


@report_group.command("update")
@click.argument("name")
@_definition_options(creating=False)
@click.option("--json", "as_json", is_flag=True, help="Print the saved report as JSON.")
@pass_ctx
def update(ctx: CliContext, name: str, as_json: bool, **values: Any) -> None:
    """Change report NAME; options not given keep their value."""
    from imagedex.reports.jobs import next_run
    from imagedex.reports.manage import update_report

    report = update_report(ctx.settings, name, **_changes(**values))
    _print_report(_summary(report, next_run(ctx.settings, name)), as_json)


@report_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_ctx
def list_command(ctx: CliContext, as_json: bool) -> None:
    """Every report with its schedule and next run."""
    from imagedex.reports.jobs import next_run
    from imagedex.reports.manage import list_reports

    reports = [_summary(r, next_run(ctx.settings, r.name)) for r in list_reports(ctx.settings)]
    print_table(
        reports,
        as_json,
        {"reports": reports},
        ("name", "title", "formats", "schedule", "next run", "recipients", "enabled"),
        _report_cells,
        empty="no reports yet: imagedex report create NAME --help",
        empty_to=console,
    )


def _report_cells(r: dict[str, Any]) -> tuple[str, ...]:
    return (
        r["name"],
        r["title"],
        ",".join(r["formats"]),
        f"{r['schedule']} ({r['timezone']})" if r["schedule"] else "on demand",
        r["next_run"] or "-",
        str(len(r["recipients"])),
        "yes" if r["enabled"] else "no",
    )


@report_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_ctx
def show(ctx: CliContext, name: str, as_json: bool) -> None:
    """One report's definition and next run."""
    from imagedex.reports.jobs import next_run
    from imagedex.reports.manage import get_report

    _print_report(_summary(get_report(ctx.settings, name), next_run(ctx.settings, name)), as_json)


delete = name_command(
    report_group,
    "delete",
    "imagedex.reports.manage:delete_report",
    "deleted report {name}",
    help="Delete report NAME and its schedule (its run history stays).",
    to=console,
)


@report_group.command("run")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_ctx
def run_command(ctx: CliContext, name: str, as_json: bool) -> None:
    """Run report NAME now and queue its deliveries (`imagedex up` sends them, or the
    outbox's own command)."""
    from imagedex.reports.history import delivery_status
    from imagedex.reports.manage import get_report
    from imagedex.reports.run import run_report

    report = get_report(ctx.settings, name)
    with console.status(f"rendering {', '.join(report.formats)}..."):
        run = run_report(ctx.services, report)
    deliveries = delivery_status(ctx.settings, run.deliveries)
    if as_json:
        print_json({**run.to_dict(), "delivery_status": deliveries})
    else:
        out.print(f"report {name}: {run.total} matching images, {run.rows} listed")
        for delivery in deliveries:
            out.print(f"  queued {delivery['id']} -> {delivery['target']}")
        if not report.recipients:
            out.print("  no recipients: nothing queued (`report preview` writes the files)")
        if run.error:
            out.print(f"  [red]not queued:[/red] {run.error}")
    if run.status != "ok":
        raise SystemExit(1)


@report_group.command("preview")
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    help="Which format [default: the report's first].",
)
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the file ('-' for stdout).",
)
@pass_ctx
def preview_command(ctx: CliContext, name: str, fmt: str | None, out_file: Path) -> None:
    """Render report NAME as it would be sent now, into a file; nothing is sent."""
    from imagedex.reports.manage import get_report
    from imagedex.reports.run import preview

    report = get_report(ctx.settings, name)
    chosen = fmt or report.formats[0]
    with console.status(f"rendering {chosen}..."):
        data = preview(ctx.services, report, chosen)
    if str(out_file) == "-":
        sys.stdout.buffer.write(data)
        return
    out_file.write_bytes(data)
    console.print(f"wrote {out_file} ({len(data):,} bytes)")


@report_group.command("history")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, help="Most recent runs to show.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_ctx
def history(ctx: CliContext, name: str, limit: int, as_json: bool) -> None:
    """Past runs of report NAME with the status of each delivery."""
    from imagedex.reports.history import run_history

    runs = run_history(ctx.settings, name, limit)
    print_table(
        runs,
        as_json,
        {"runs": runs},
        ("run", "scheduled for", "status", "images", "deliveries", "error"),
        _run_cells,
        empty=f"report {name} has not run yet",
        empty_to=console,
    )


def _run_cells(run: dict[str, Any]) -> tuple[str, ...]:
    deliveries = ", ".join(f"{d['target']}: {d['status']}" for d in run["delivery_status"])
    return (
        str(run["id"]),
        run["scheduled_for"],
        run["status"],
        f"{run['rows']}/{run['total']}",
        deliveries or "-",
        run["error"] or "",
    )


COMMANDS: list[click.Command] = [report_group]
