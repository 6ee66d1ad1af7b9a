"""`imagedex backup` and `imagedex restore`: a consistent copy of a running system, and an empty
data dir filled from one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import TaskID

from imagedex.backup.manifest import Progress
from imagedex.cli.common import CliContext, console, pass_ctx, print_outcome, progress_display


@contextmanager
def _progress(quiet: bool) -> Iterator[Progress]:
    """A progress callback drawing one bar per stage on stderr (nothing with --json)."""
    with progress_display(quiet) as display:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = display.add_task(stage, total=total)
            display.update(tasks[stage], completed=done, total=total)

        try:
            yield report
        except BaseException:
            display.live.transient = True  # the error alone, not half-drawn bars above it
            raise


def _notes(result: dict[str, Any]) -> None:
    for note in result.get("not_covered") or []:
        console.print(f"[yellow]not covered:[/] {note}", highlight=False)
    for skipped in result.get("skipped") or []:
        console.print(f"left out: {skipped['path']} ({skipped['why']})", highlight=False)


def _contents(images: int | None, stores: int, files: int, objects: int | None) -> str:
    what = [f"{images} indexed image(s)"] if images is not None else []
    what.append(f"{stores} store(s)")
    if files:
        what.append(f"{files} file(s)")
    if objects is not None:
        what.append(f"{objects} object(s)")
    return ", ".join(what)


def _queue_text(queue: dict[str, int] | None) -> str:
    if not queue:
        return ""
    return (
        f"; queue: {queue['visible']} waiting, {queue['in_flight']} in flight, "
        f"{queue['dead']} dead letter(s)"
    )


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--local-only",
    is_flag=True,
    help="With S3, SQS or a search engine configured: back up what is local and name the rest "
    "(otherwise refused).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@pass_ctx
def backup(ctx: CliContext, dest: Path, local_only: bool, as_json: bool) -> None:
    """Copy every store, the local bucket and a manifest into DEST (a new or empty folder).

    Safe while `imagedex up` or workers run: each SQLite store is copied with SQLite's online
    backup, and work under way is kept (the queue's pending messages, and events for what
    arrived during the backup). `imagedex restore DEST` fills an empty data dir from it.
    DEST holds everything the data dir does, the secret that signs links included: keep it
    as private as the data dir.
    """
    from imagedex.backup import create_backup

    with _progress(as_json) as progress:
        manifest = create_backup(ctx.settings, dest, local_only=local_only, progress=progress)
    counts = manifest["counts"]
    objects = manifest["objects"]
    what = _contents(
        counts["images"],
        len(manifest["stores"]),
        len(manifest["files"]),
        objects["count"] if objects else None,
    )
    if objects:
        what += f" ({objects['bytes']:,} bytes)"
    message = f"backed up {what} to {dest}{_queue_text(counts['queue'])}"
    print_outcome({"backup": str(dest.resolve()), **manifest}, as_json, message)
    if not as_json:
        _notes(manifest)


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Only verify the backup's checksums; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_ctx
def restore(ctx: CliContext, src: Path, check: bool, as_json: bool) -> None:
    """Fill an EMPTY data dir (--data-dir / IMAGEDEX_DATA_DIR) from the backup in SRC.

    Every checksum is verified before anything is moved into place; a data dir, bucket folder,
    index or queue file that is not empty is refused, so nothing stored is ever overwritten.
    Then start `imagedex up` (or a worker): work that was queued at backup time is done then.
    """
    from imagedex.backup import restore_backup, verify_backup

    with _progress(as_json) as progress:
        if check:
            result = verify_backup(src, progress)
        else:
            result = restore_backup(ctx.settings, src, progress)
    counts = result.get("counts") or {}
    what = _contents(
        counts.get("images"), len(result["stores"]), len(result["files"]), result["objects"]
    )
    queue = counts.get("queue")
    if check:
        message = f"the backup in {result['backup']} is complete and intact: {what}"
    else:
        message = f"restored {what} into {result['data_dir']} (backup of {result['made_at']})"
        message += _queue_text(queue)
        if queue and queue["visible"] + queue["in_flight"]:
            message += "; start `imagedex up` or `imagedex worker` to finish the queued work"
    print_outcome(result, as_json, message)
    if not as_json:
        _notes(result)


COMMANDS: list[click.Command] = [backup, restore]
