"""`imagedex` subcommands: cli_kibana (being built)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
