"""The `imagedex` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from imagedex import __version__
from imagedex.cli.common import (
    CliContext,
    console,
    pass_ctx,
    print_fields,
    print_json,
)
from imagedex.config import read_settings
from imagedex.errors import ImagedexError
from imagedex.registry import Registry

HELP_OPTIONS = ("-h", "--help")
#: Subcommands that run with invalid settings: they show them (the rest refuse to start)
_LENIENT = ("config",)


class SettingsError(click.ClickException):
    """Invalid settings: the command does not start (exit status 2, as other imagedex errors)."""

    exit_code = 2


class RootGroup(click.Group):
    """Keeps the subcommand's arguments, so that `imagedex CMD --help` shows the help even while
    a setting is invalid."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta["imagedex.help"] = any(arg in HELP_OPTIONS for arg in rest)
        return name, command, rest


@click.group(cls=RootGroup, context_settings={"help_option_names": list(HELP_OPTIONS)})
@click.version_option(__version__, prog_name="imagedex")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded bucket, queue and index live "
    "[env IMAGEDEX_DATA_DIR; default ~/.local/share/imagedex].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A TOML settings file [env IMAGEDEX_CONFIG; default ./imagedex.toml if present].",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, config_file: Path | None, verbose: int) -> None:
    """imagedex: find things in images.

    Upload images, let the worker recognise what they show, then search by label,
    confidence or text. Run `imagedex up` for the API and worker together.
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs each request's full URL at INFO: Slack and webhook URLs carry their secrets
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    try:
        settings, problems = read_settings(config_file, data_dir=data_dir)
    except ImagedexError as exc:  # an unreadable settings file
        raise SettingsError(str(exc)) from exc
    lenient = ctx.invoked_subcommand in _LENIENT or ctx.meta.get("imagedex.help", False)
    if problems and not lenient:
        # before anything starts: no half-started server or worker on a bad setting
        raise SettingsError("\n".join(problems))
    ctx.obj = CliContext(settings)
    ctx.meta["imagedex.problems"] = problems


@main.group("config", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the settings and problems as JSON.")
@click.pass_context
def show_config(click_ctx: click.Context, as_json: bool) -> None:
    """The effective settings (defaults < imagedex.toml < IMAGEDEX_* env < flags).

    Invalid settings are shown as given and then named, one line each (exit status 2).
    """
    if click_ctx.invoked_subcommand is not None:
        return
    settings = click_ctx.find_object(CliContext).settings  # type: ignore[union-attr]
    secret = ("secret_key", "smtp_password", "index_password", "index_api_key", "webhook_secret")
    data: dict[str, Any] = {
        k: ("(set)" if k in secret and v else str(v)) for k, v in settings.__dict__.items()
    }
    data["store_url"] = settings.store_url
    problems: list[str] = click_ctx.meta.get("imagedex.problems", [])
    if as_json:
        data["problems"] = problems
    print_fields(data, as_json, separator=" = ")
    for problem in problems:
        click.echo(f"error: {problem}", err=True)  # not rich: values may hold [brackets]
    if problems:
        sys.exit(2)


@show_config.command("webhook-secret")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print {target, secret} as JSON.")
@pass_ctx
def webhook_secret(ctx: CliContext, target: str, as_json: bool) -> None:
    """The key webhooks to TARGET (webhook:https://... or the URL) are signed with.

    Give it to the receiver, which checks X-Imagedex-Signature with it (docs/reports-alerts.md).
    Each webhook URL has its own unless the webhook_secret setting gives one for all.
    """
    from imagedex.notify.targets import parse_target
    from imagedex.notify.web import WebhookTarget
    from imagedex.notify.web import webhook_secret as secret_for

    parsed = parse_target(target, warn=False)
    if not isinstance(parsed, WebhookTarget):
        raise click.UsageError(
            f"{parsed.redacted()} is not a webhook: only webhooks are signed (Slack checks the "
            "token in its URL)"
        )
    secret = secret_for(ctx.settings, parsed.address)
    if as_json:
        print_json({"target": parsed.redacted(), "secret": secret})
    else:
        click.echo(secret)  # stdout alone, for $(imagedex config webhook-secret URL)


#: Command groups that live in modules of their own; each module's COMMANDS are added to `main`.
COMMAND_GROUPS: Registry[list[click.Command]] = Registry("command group", "imagedex.cli_groups")
for _group in (
    "images",
    "serve",
    "dlq",
    "indexes",
    "aws",
    "access",
    "reports",
    "alerts",
    "kibana",
    "deliveries",
    "backup",
    "delete",
    "people",
    "custom",
    "tags",
):
    COMMAND_GROUPS.register(_group, f"imagedex.cli.{_group}:COMMANDS")


def _add_subcommand_modules() -> None:
    for name in COMMAND_GROUPS:
        for command in COMMAND_GROUPS.resolve(name):
            main.add_command(command)


_add_subcommand_modules()


def run() -> None:
    try:
        main(standalone_mode=True)
    except ImagedexError as exc:
        from rich.markup import escape

        console.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(2)


if __name__ == "__main__":
    run()
