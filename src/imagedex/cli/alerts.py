"""`imagedex alert ...`: create, list, mute and test alert rules; read the alert history."""

from __future__ import annotations

from typing import Any

import click

from imagedex.cli.common import (
    CliContext,
    name_command,
    out,
    pass_ctx,
    print_fields,
    print_json,
    print_lines,
)
from imagedex.clock import utc_now

KIND_OPTIONS = ("label", "moderation", "text", "count", "silence")


@click.group("alert")
def alert() -> None:
    """Alert rules: be told when an image shows something, or when counts cross a threshold.

    Per-image rules (--label, --moderation, --text) are checked as each image is indexed;
    aggregate rules (--count, --silence) on a schedule. Notifications go through the outbox
    (e-mail, Slack, webhooks), at most one per rule per --throttle period.
    """


@alert.command("create")
@click.argument("name")
@click.option("--label", help="Fire when an image shows this label (parents and aliases count).")
@click.option(
    "--moderation",
    "moderation",
    is_flag=False,
    flag_value="*",
    default=None,
    help="Fire on unsafe content: any moderation label, or the one given.",
)
@click.option("--text", "pattern", help="Fire when OCR text or the title contains PATTERN.")
@click.option("--regex", is_flag=True, help="--text is a regular expression (case-insensitive).")
@click.option("--count", "query", help="Count images matching QUERY (search syntax; '' = all).")
@click.option("--silence", help="Fire when no new image arrived for this period (e.g. 6h).")
@click.option("--window", default="1h", show_default=True, help="--count's sliding window.")
@click.option("--above", type=float, help="--count fires when the count is > N.")
@click.option("--at-least", type=float, help="--count fires when the count is >= N.")
@click.option("--below", type=float, help="--count fires when the count is < N.")
@click.option("--at-most", type=float, help="--count fires when the count is <= N.")
@click.option("--min-confidence", type=float, default=50.0, show_default=True)
@click.option(
    "--schedule",
    default="*/5 * * * *",
    show_default=True,
    help="When aggregate rules are checked: cron, hourly, daily@08:00, ...",
)
@click.option(
    "--to",
    "actions",
    multiple=True,
    required=True,
    help="mailto:a@x.org, slack:https://hooks.slack.com/..., webhook:https://... (repeatable).",
)
@click.option("--throttle", default="1h", show_default=True, help="At most one alert per period.")
@click.option("--description", default="", help="A note for people reading the rule list.")
@click.option("--disabled", is_flag=True, help="Create the rule switched off.")
@click.option("--replace", "replace_existing", is_flag=True, help="Replace a rule of that name.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def create(
    ctx: CliContext,
    name: str,
    label: str | None,
    moderation: str | None,
    pattern: str | None,
    regex: bool,
    query: str | None,
    silence: str | None,
    window: str,
    above: float | None,
    at_least: float | None,
    below: float | None,
    at_most: float | None,
    min_confidence: float,
    schedule: str,
    actions: tuple[str, ...],
    throttle: str,
    description: str,
    disabled: bool,
    replace_existing: bool,
    as_json: bool,
) -> None:
    """Create the alert rule NAME (a slug), e.g.

    imagedex alert create dogs --label dog --min-confidence 90 --to mailto:me@example.org

    imagedex alert create busy --count "label:person" --window 1h --above 50 --to slack:https://...
    """
    from imagedex.alerts.manage import save_rule
    from imagedex.alerts.model import Rule

    chosen = {
        "label": label is not None,
        "moderation": moderation is not None,
        "text": pattern is not None,
        "count": query is not None,
        "silence": silence is not None,
    }
    kinds = [k for k, given in chosen.items() if given]
    if len(kinds) != 1:
        raise click.UsageError(
            "give exactly one of --label, --moderation, --text, --count, --silence"
        )
    kind = kinds[0]
    fields: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "actions": list(actions),
        "min_confidence": min_confidence,
        "schedule": schedule,
        "throttle": throttle,
        "description": description,
        "enabled": not disabled,
    }
    if kind == "label":
        fields["label"] = label
    elif kind == "moderation":
        fields["moderation_label"] = "" if moderation == "*" else moderation
    elif kind == "text":
        fields.update(pattern=pattern, regex=regex)
    elif kind == "count":
        bounds = {">": above, ">=": at_least, "<": below, "<=": at_most}
        given = [(op, value) for op, value in bounds.items() if value is not None]
        if len(given) != 1:
            raise click.UsageError("--count needs one of --above, --at-least, --below, --at-most")
        fields.update(query=query, window=window, comparison=given[0][0], threshold=given[0][1])
    else:
        fields["window"] = silence
    rule = save_rule(ctx.settings, Rule.from_dict(fields), utc_now(), replace_existing)
    if as_json:
        print_json(rule.redacted())
    else:
        targets = ", ".join(rule.redacted_actions())
        out.print(f"alert rule {rule.name}: {rule.summary()} -> {targets}")


def _rule_row(rule: Any, now: str) -> dict[str, Any]:
    from imagedex.alerts.model import format_duration

    return {
        "name": rule.name,
        "kind": rule.kind,
        "watches": rule.summary(),
        "actions": rule.redacted_actions(),
        "throttle": format_duration(rule.throttle),
        "enabled": rule.enabled,
        "muted": rule.muted_at(now),
        "muted_until": rule.muted_until,
    }


@alert.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_rules(ctx: CliContext, as_json: bool) -> None:
    """Every alert rule, with what it watches and where it sends."""
    from imagedex.alerts.manage import open_store
    from imagedex.alerts.store import iso

    now = iso(utc_now())
    rows = [_rule_row(r, now) for r in open_store(ctx.settings).rules()]
    print_lines(
        rows,
        as_json,
        {"rules": rows},
        _rule_line,
        empty="no alert rules (create one with `imagedex alert create`)",
    )


def _rule_line(row: dict[str, Any]) -> str:
    state = " [muted]" if row["muted"] else (" [disabled]" if not row["enabled"] else "")
    return f"{row['name']}{state}: {row['watches']} -> {', '.join(row['actions'])}"


@alert.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx: CliContext, name: str, as_json: bool) -> None:
    """One rule in full, with its current state."""
    from dataclasses import asdict

    from imagedex.alerts.manage import open_store

    store = open_store(ctx.settings)
    data = store.get(name).redacted()
    data["state"] = asdict(store.state(name))
    print_fields(data, as_json)


delete = name_command(
    alert,
    "delete",
    "imagedex.alerts.manage:delete_rule",
    "deleted alert rule {name}",
    help="Delete a rule (its history stays).",
)


@alert.command("mute")
@click.argument("name")
@click.option("--for", "period", help="Mute for this long (e.g. 2h); default until unmuted.")
@pass_ctx
def mute(ctx: CliContext, name: str, period: str | None) -> None:
    """Stop a rule's notifications for a while (matches are ignored, nothing is queued)."""
    from imagedex.alerts.manage import mute_rule

    rule = mute_rule(ctx.settings, name, utc_now(), period)
    until = "until unmuted" if rule.muted_until == "forever" else f"until {rule.muted_until}"
    out.print(f"muted {name} {until}")


@alert.command("unmute")
@click.argument("name")
@pass_ctx
def unmute(ctx: CliContext, name: str) -> None:
    """Let a muted rule notify again."""
    from imagedex.alerts.manage import unmute_rule

    unmute_rule(ctx.settings, name, utc_now())
    out.print(f"unmuted {name}")


@alert.command("history")
@click.argument("name", required=False)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def history(ctx: CliContext, name: str | None, limit: int, as_json: bool) -> None:
    """Alerts sent (newest first) with the delivery status of each notification."""
    from imagedex.alerts.manage import history as alert_history

    rows = alert_history(ctx.settings, name, limit)
    print_lines(rows, as_json, {"alerts": rows}, _alert_line, empty="no alerts yet", markup=False)


def _alert_line(row: dict[str, Any]) -> str:
    extra = f" (+{row['suppressed']} suppressed)" if row["suppressed"] else ""
    errors = "; ".join(d["last_error"] for d in row["deliveries"] if d.get("last_error"))
    line = f"{row['fired_at']} {row['rule']} [{row['status']}] {row['subject']}{extra}"
    return line + (f" - {errors}" if errors else "")


@alert.command("test")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def test(ctx: CliContext, name: str, as_json: bool) -> None:
    """Queue a test notification to every action of a rule (`imagedex up` sends it; see
    `imagedex deliveries` for its status)."""
    from imagedex.alerts.manage import send_test

    record = send_test(ctx.settings, name, utc_now())
    print_fields(
        {"rule": record.rule, "status": record.status, "deliveries": record.delivery_ids}, as_json
    )


COMMANDS: list[click.Command] = [alert]
