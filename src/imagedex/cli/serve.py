"""Commands that keep running: the worker, `imagedex up` and the folder watcher."""

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

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

if TYPE_CHECKING:
    from imagedex.ingest.worker import Worker

log = logging.getLogger("imagedex.cli.serve")


class WorkerThread(NamedTuple):
    thread: threading.Thread
    stop: threading.Event
    worker: "Worker"

    def drain(self, deadline: float, hurry: threading.Event) -> int:
        """Stop receiving, let the batch in hand finish until `deadline` (`time.monotonic()`)
        or until `hurry` is set, then release what is still in flight, so that another worker
        gets it at once rather than after the visibility timeout. Returns how many."""
        self.stop.set()
        while self.thread.is_alive() and not hurry.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.thread.join(timeout=min(left, 0.2))  # short waits: a signal may come meanwhile
        if not self.thread.is_alive():
            return 0
        released = self.worker.release_in_flight("imagedex up stopped before finishing it")
        log.warning("released %d message(s) still in flight to other workers", released)
        return released


def run_worker_thread(
    services: Services, on_failure: Callable[[BaseException], None] | None = None
) -> WorkerThread:
    """A worker in a daemon thread, the event that stops it, and the worker.

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
    return WorkerThread(thread, stop, worker)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM finish the batch in hand, hand back the rest, then exit cleanly."""

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
    processes would only look alive. SIGTERM or Ctrl-C drains it: nothing new is received, the
    batch in hand gets `drain_timeout` seconds, what is still in flight is then released for
    other workers (a second signal releases at once), and it exits 0."""
    import uvicorn

    from imagedex.api import create_app
    from imagedex.cli.access import warn_about_access
    from imagedex.ingest.pipeline import describe
    from imagedex.scheduling.background import start_background

    settings = ctx.settings.with_overrides(host=host, port=port)
    folder = watch_dir or (Path(settings.watch_dir) if settings.watch_dir else None)
    if folder is not None and not folder.is_dir():
        raise click.ClickException(
            f"setting 'watch_dir' is {str(folder)!r}, which is not a folder: create it or "
            "change IMAGEDEX_WATCH_DIR"
        )
    warn_about_access(settings)
    services = Services.from_settings(settings)
    stopping, hurry, background_stop = threading.Event(), threading.Event(), threading.Event()
    workers: list[WorkerThread] = []

    def on_signal() -> None:
        """The first signal stops receiving and starting work at once, while HTTP shuts down;
        a later one cuts the drain short."""
        if stopping.is_set():
            hurry.set()
            server.force_exit = True
            return
        stopping.set()
        background_stop.set()
        for running in workers:
            running.stop.set()
        server.should_exit = True

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """The handlers below stop the server. uvicorn's own would keep the worker going
            until HTTP has shut down, then raise the signal again with Python's default
            handler back, ending the process before the drain."""
            yield

    server = Server(
        uvicorn.Config(
            create_app(services),
            host=settings.host,
            port=settings.port,
            log_level="info",
            timeout_graceful_shutdown=max(1, round(settings.drain_timeout)),
            proxy_headers=False,  # X-Forwarded-*: the app believes only trusted_proxies
        )
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _signum, _frame: on_signal())
    failures: list[BaseException] = []

    def worker_failed(exc: BaseException) -> None:
        failures.append(exc)
        server.should_exit = True

    if not no_worker:
        workers.append(run_worker_thread(services, on_failure=worker_failed))
    background = start_background(services, background_stop)
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
        deadline = time.monotonic() + settings.drain_timeout
        stopping.set()  # from here on a signal only cuts the drain short
        background_stop.set()
        if folder is not None:
            watcher.stop()
        for running in workers:
            running.drain(deadline, hurry)
        for thread in background:  # a round in progress ends; an unsent delivery stays due
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
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
