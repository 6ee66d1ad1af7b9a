"""The `imagedex` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from imagedex import __version__
from imagedex.cli.common import (
    CliContext,
    console,
    pass_ctx,
    print_fields,
)
from imagedex.config import load_settings
from imagedex.errors import ImagedexError
from imagedex.registry import Registry


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
        settings = load_settings(config_file, data_dir=data_dir)
    except ImagedexError as exc:
        raise click.ClickException(str(exc)) from exc
    ctx.obj = CliContext(settings)


@main.command("config")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show_config(ctx: CliContext, as_json: bool) -> None:
    """The effective settings (defaults < imagedex.toml < IMAGEDEX_* env < flags)."""
    secret = ("secret_key", "smtp_password", "index_password", "index_api_key", "webhook_secret")
    data = {k: ("(set)" if k in secret and v else str(v)) for k, v in ctx.settings.__dict__.items()}
    data["store_url"] = ctx.settings.store_url
    print_fields(data, as_json, separator=" = ")


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
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    run()
