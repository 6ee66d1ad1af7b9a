"""What every `imagedex` subcommand module shares: consoles, printers, the settings context."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from imagedex.config import Settings
from imagedex.services import Services

console = Console(stderr=True)
out = Console()


def progress_display(quiet: bool) -> Progress:
    """A progress display on stderr (off when the output is JSON for a script)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )


def print_fields(data: dict[str, Any], as_json: bool, separator: str = ": ") -> None:
    """A flat result as JSON for scripts, or one `name: value` line each for people."""
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        out.print(f"{key}{separator}{value}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


class CliContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        if self._services is None:
            self._services = Services.from_settings(self.settings)
        return self._services


pass_ctx = click.make_pass_decorator(CliContext)
