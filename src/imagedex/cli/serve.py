"""Commands that keep running: the worker, `imagedex up` and the folder watcher."""

import threading
from pathlib import Path

import click

from imagedex import __version__
from imagedex.cli.common import (
    CliContext,
    console,
    pass_ctx,
    print_json,
    progress_display,
)
from imagedex.services import Services


def run_worker_thread(services: Services) -> tuple[threading.Thread, threading.Event]:
    """A worker in a daemon thread, and the event that stops it."""
    from imagedex.ingest.worker import Worker

    stop = threading.Event()
    worker = Worker(services)
    thread = threading.Thread(target=worker.run, args=(stop,), name="imagedex-worker", daemon=True)
    thread.start()
    return thread, stop


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM finish the batch in hand, hand back the rest, then exit cleanly."""
    import signal

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@click.command()
@click.option("--once", is_flag=True, help="Drain the queue, then exit.")
@click.option("--json", "as_json", is_flag=True, help="Print run statistics as JSON at the end.")
@pass_ctx
def worker(ctx: CliContext, once: bool, as_json: bool) -> None:
    """Work the queue: recognise each new image and index it (runs until stopped)."""
    from imagedex.ingest.worker import Worker

    services = ctx.services
    stop = threading.Event()
    _stop_on_signals(stop)
    with progress_display(as_json) as progress:
        task = progress.add_task("messages processed", total=None)
        runner = Worker(services, on_batch=lambda s: progress.update(task, completed=s.messages))
        stats = runner.run(stop, once=once)
    summary = {
        "messages": stats.messages,
        "indexed": stats.indexed,
        "unchanged": stats.unchanged,
        "removed": stats.removed,
        "retried": stats.retried,
        "dead_lettered": stats.dead_lettered,
        "seconds": round(stats.elapsed, 3),
    }
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"{stats.messages} messages: {stats.indexed} indexed, {stats.unchanged} unchanged, "
            f"{stats.removed} removed, {stats.retried} retried, "
            f"{stats.dead_lettered} dead-lettered"
        )


@click.command()
@click.option("--host", help="Address to bind [default 127.0.0.1].")
@click.option("--port", type=int, help="Port [default 8000].")
@click.option(
    "--watch",
    "watch_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Also index images dropped into this folder.",
)
@click.option("--no-worker", is_flag=True, help="Serve the API only (workers run elsewhere).")
@pass_ctx
def up(
    ctx: CliContext, host: str | None, port: int | None, watch_dir: Path | None, no_worker: bool
) -> None:
    """Run the API, a worker and (optionally) a folder watcher: the whole embedded system."""
    import uvicorn

    from imagedex.api import create_app

    settings = ctx.settings.with_overrides(host=host, port=port)
    from imagedex.cli.access import warn_about_access

    warn_about_access(settings)
    services = Services.from_settings(settings)
    stoppers: list[threading.Event] = []
    if not no_worker:
        _thread, stop = run_worker_thread(services)
        stoppers.append(stop)
    from imagedex.scheduling.background import start_background

    background_stop = threading.Event()
    stoppers.append(background_stop)
    start_background(services, background_stop)
    folder = watch_dir or (Path(settings.watch_dir) if settings.watch_dir else None)
    if folder is not None:
        from imagedex.ingest.watch import FolderWatcher

        watcher = FolderWatcher(services, folder)
        watcher.start()
    console.print(
        f"imagedex {__version__}: data in {settings.data_dir}; "
        f"API on http://{settings.host}:{settings.port} (docs at /docs)"
    )
    try:
        uvicorn.run(create_app(services), host=settings.host, port=settings.port, log_level="info")
    finally:
        for stop in stoppers:
            stop.set()
        if folder is not None:
            watcher.stop()


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--no-initial-scan", is_flag=True, help="Skip uploading files already there.")
@pass_ctx
def watch(ctx: CliContext, folder: Path, no_initial_scan: bool) -> None:
    """Upload images as they appear in FOLDER (and remove them when deleted) until stopped."""
    from imagedex.ingest.watch import FolderWatcher

    watcher = FolderWatcher(ctx.services, folder)
    if not no_initial_scan:
        count = watcher.scan()
        console.print(f"initial scan: {count} new or changed file(s) uploaded")
    watcher.start()
    console.print(f"watching {folder} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()


# -- search -----------------------------------------------------------------------------------


COMMANDS: list[click.Command] = [worker, up, watch]
