"""What every `imagedex` subcommand module shares: consoles, printers, the settings context."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from imagedex.config import Settings
from imagedex.registry import import_reference
from imagedex.services import Services

T = TypeVar("T")

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


def print_outcome(data: Any, as_json: bool, message: str) -> None:
    """What a command did: JSON on stdout for scripts, or one sentence on stderr for people."""
    if as_json:
        print_json(data)
    else:
        console.print(message)


def _printed_json_or_empty(
    rows: Sequence[Any], as_json: bool, json_data: Any, empty: str, empty_to: Console | None
) -> bool:
    """Print `json_data` for scripts, or `empty` when there is nothing to list; False otherwise."""
    if as_json:
        print_json(json_data)
    elif not rows:
        (empty_to or out).print(empty)
    else:
        return False
    return True


def print_table(
    rows: Sequence[T],
    as_json: bool,
    json_data: Any,
    columns: Sequence[str],
    cells: Callable[[T], Sequence[str]],
    *,
    empty: str,
    empty_to: Console | None = None,
    title: str | None = None,
) -> None:
    """A listing as `json_data` for scripts, or a table of `cells(row)` under `columns`
    (see `print_cells`: ids are never cut)."""
    if _printed_json_or_empty(rows, as_json, json_data, empty, empty_to):
        return
    print_cells(columns, [cells(row) for row in rows], title=title)


#: Columns printed whole whatever the terminal's width: people copy them into other commands.
WHOLE_COLUMNS = frozenset({"id"})
_NARROWEST_COLUMN = 6  # below this the other columns are unreadable: one block per row instead


def print_cells(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    whole: frozenset[str] = WHOLE_COLUMNS,
) -> None:
    """A table on stdout whose `whole` columns (ids) are never wrapped or cut; the others wrap.
    When the terminal cannot fit them all, each row becomes a block: its first whole value on
    a line of its own, then `column: value` lines. Cells are plain text, never markup."""
    from rich.table import Table
    from rich.text import Text

    kept = {
        i: max(len(name), *(len(row[i]) for row in rows)) if rows else len(name)
        for i, name in enumerate(columns)
        if name in whole
    }
    # a column takes its width plus one space each side plus one border; one more border closes
    needed = sum(w + 3 for w in kept.values()) + (len(columns) - len(kept)) * (
        _NARROWEST_COLUMN + 3
    )
    if out.width < needed + 1:
        _print_blocks(columns, rows, title, kept)
        return
    table = Table(title=title)
    for i, name in enumerate(columns):
        if i in kept:
            table.add_column(name, no_wrap=True, min_width=kept[i])
        else:
            table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    out.print(table)


def _print_blocks(
    columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None, kept: dict[int, int]
) -> None:
    if title:
        out.print(title, markup=False, soft_wrap=True)
    head = min(kept) if kept else 0
    for row in rows:
        out.print(row[head], markup=False, highlight=False, soft_wrap=True)
        for i, name in enumerate(columns):
            if i != head and row[i]:
                out.print(f"  {name}: {row[i]}", markup=False, highlight=False, soft_wrap=True)


def print_lines(
    rows: Sequence[T],
    as_json: bool,
    json_data: Any,
    line: Callable[[T], str],
    *,
    empty: str,
    empty_to: Console | None = None,
    markup: bool | None = None,
) -> None:
    """A listing as `json_data` for scripts, or one `line(row)` each."""
    if _printed_json_or_empty(rows, as_json, json_data, empty, empty_to):
        return
    for row in rows:
        out.print(line(row), markup=markup)


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


def name_command(
    group: click.Group,
    command: str,
    action: str,
    done: str,
    *,
    help: str,
    to: Console | None = None,
) -> click.Command:
    """`group command NAME`: calls `action(settings, NAME)`, given as a lazily imported
    "module:function" reference, then prints `done` with `{name}` filled in."""

    @group.command(command, help=help)
    @click.argument("name")
    @pass_ctx
    def run(ctx: CliContext, name: str) -> None:
        import_reference(action)(ctx.settings, name)
        (to or out).print(done.format(name=name))

    return run
