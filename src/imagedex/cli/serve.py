"""Commands that keep running: the worker, `imagedex up` and the folder watcher."""

import logging
import threading
from collections.abc import Callable
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
from imagedex.errors import ConfigError
from imagedex.services import Services

log = logging.getLogger("imagedex.cli.serve")


def run_worker_thread(
    services: Services, on_failure: Callable[[BaseException], None] | None = None
) -> tuple[threading.Thread, threading.Event]:
    """A worker in a daemon thread, and the event that stops it.

    The analyzers are built here, in the caller's thread, so a setting no analyzer accepts is
    the caller's error; a worker that dies later is logged in one line and `on_failure` told."""
    from imagedex.ingest.pipeline import describe
    from imagedex.ingest.worker import Worker

    stop = threading.Event()
    worker = Worker(services)
    try:
        worker.pipeline  # noqa: B018 - builds the analyzers now
    except Exception as exc:
        raise ConfigError(f"the worker cannot start: {describe(exc)}") from exc

    def work() -> None:
        try:
            worker.run(stop)
        except Exception as exc:
            log.error("the worker stopped: %s", describe(exc))
            log.debug("the worker stopped", exc_info=True)
            if on_failure is not None:
                on_failure(exc)

    thread = threading.Thread(target=work, name="imagedex-worker", daemon=True)
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
    """Run the API, a worker and (optionally) a folder watcher: the whole embedded system.

    It does not start, or stops, when its worker cannot run: an API whose uploads nobody
    processes would only look alive."""
    import uvicorn

    from imagedex.api import create_app
    from imagedex.ingest.pipeline import describe

    settings = ctx.settings.with_overrides(host=host, port=port)
    from imagedex.cli.access import warn_about_access

    folder = watch_dir or (Path(settings.watch_dir) if settings.watch_dir else None)
    if folder is not None and not folder.is_dir():
        raise click.ClickException(
            f"setting 'watch_dir' is {str(folder)!r}, which is not a folder: create it or "
            "change IMAGEDEX_WATCH_DIR"
        )
    warn_about_access(settings)
    services = Services.from_settings(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(services),
            host=settings.host,
            port=settings.port,
            log_level="info",
            proxy_headers=False,  # X-Forwarded-*: the app believes only trusted_proxies
        )
    )
    failures: list[BaseException] = []

    def worker_failed(exc: BaseException) -> None:
        failures.append(exc)
        server.should_exit = True

    stoppers: list[threading.Event] = []
    if not no_worker:
        _thread, stop = run_worker_thread(services, on_failure=worker_failed)
        stoppers.append(stop)
    from imagedex.scheduling.background import start_background

    background_stop = threading.Event()
    stoppers.append(background_stop)
    start_background(services, background_stop)
    if folder is not None:
        from imagedex.ingest.watch import FolderWatcher

        watcher = FolderWatcher(services, folder)
        watcher.start()
    console.print(
        f"imagedex {__version__}: data in {settings.data_dir}; "
        f"API on http://{settings.host}:{settings.port} (docs at /docs)"
    )
    try:
        server.run()
    finally:
        for stop in stoppers:
            stop.set()
        if folder is not None:
            watcher.stop()
    if failures:
        raise click.ClickException(
            f"the worker stopped ({describe(failures[0])}), so imagedex up stopped too"
        )


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
