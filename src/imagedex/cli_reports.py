"""`imagedex` subcommands: cli_reports (being built)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
