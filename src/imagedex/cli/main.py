"""The `imagedex` command."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from imagedex import __version__
from imagedex.cli.common import (
    CliContext,
    console,
    out,
    pass_ctx,
    print_fields,
    print_json,
    progress_display,
)
from imagedex.config import Settings, load_settings
from imagedex.documents import SearchQuery
from imagedex.errors import ImagedexError
from imagedex.index.base import MigratableIndex
from imagedex.registry import Registry
from imagedex.services import Services


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


# -- ingest / worker / up ---------------------------------------------------------------------


def _run_worker_thread(services: Services) -> tuple[threading.Thread, threading.Event]:
    from imagedex.ingest.worker import Worker

    stop = threading.Event()
    worker = Worker(services)
    thread = threading.Thread(target=worker.run, args=(stop,), name="imagedex-worker", daemon=True)
    thread.start()
    return thread, stop


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--title", help="Title for the uploaded image(s) (default: the file name).")
@click.option("--wait", is_flag=True, help="Return only when indexed or dead-lettered.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits.")
@click.option(
    "--process/--no-process",
    default=True,
    show_default=True,
    help="With --wait on the embedded queue, also work the queue in this process.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_ctx
def ingest(
    ctx: CliContext,
    paths: tuple[Path, ...],
    title: str | None,
    wait: bool,
    timeout: float,
    process: bool,
    as_json: bool,
) -> None:
    """Upload image files or folders (folders: images found below them) for indexing."""
    from imagedex.ingest.upload import upload_paths, wait_for

    services = ctx.services
    with progress_display(as_json) as progress:
        task = progress.add_task("uploading", total=None)
        uploads = upload_paths(
            services, paths, title=title, on_upload=lambda _u: progress.advance(task)
        )
        progress.update(task, total=len(uploads), completed=len(uploads))
        outcomes = None
        if wait:
            worker = None
            if (
                process
                and not services.store.emits_events()
                and services.settings.queue in ("", "sqlite")
            ):
                worker = _run_worker_thread(services)
            waiting = progress.add_task("indexing", total=len(uploads))
            outcomes = wait_for(
                services,
                uploads,
                timeout,
                on_progress=lambda done, _total: progress.update(waiting, completed=done),
            )
            if worker is not None:
                worker[1].set()
                worker[0].join(timeout=60)
    if outcomes is None:
        result = {"uploaded": [u.__dict__ for u in uploads]}
        if as_json:
            print_json(result)
        else:
            console.print(f"uploaded {len(uploads)} file(s); the worker will index them")
        return
    failed = [o for o in outcomes if o.status != "indexed"]
    if as_json:
        print_json(
            {
                "indexed": sum(1 for o in outcomes if o.status == "indexed"),
                "failed": sum(1 for o in outcomes if o.status == "failed"),
                "pending": sum(1 for o in outcomes if o.status == "pending"),
                "results": [
                    {**o.upload.__dict__, "status": o.status, "reason": o.reason} for o in outcomes
                ],
            }
        )
    else:
        console.print(f"indexed {len(outcomes) - len(failed)} of {len(outcomes)}")
        for o in failed:
            reason = o.reason or "not indexed before the timeout"
            console.print(f"[red]{o.status}[/red] {o.upload.path}: {reason}")
    if failed:
        sys.exit(1)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM finish the batch in hand, hand back the rest, then exit cleanly."""
    import signal

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@main.command()
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


@main.command()
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
        _thread, stop = _run_worker_thread(services)
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


@main.command()
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


def _label_summary(labels: list[dict[str, Any]], n: int = 4) -> str:
    return ", ".join(f"{lb['label']} {lb['confidence']:.0f}%" for lb in labels[:n])


@main.command()
@click.argument("text", required=False)
@click.option("--label", "labels", multiple=True, help="Label to match (repeatable).")
@click.option("--any", "match_any", is_flag=True, help="Match any of the labels, not all.")
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 100),
    default=0.0,
    help="Minimum label confidence (0-100).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option(
    "--sort",
    type=click.Choice(["relevance", "newest", "oldest", "title"]),
    default="relevance",
    show_default=True,
)
@click.option(
    "--moderation",
    type=click.Choice(["safe", "unsafe"]),
    help="Only images without (safe) or with (unsafe) moderation labels >= 50%.",
)
@click.option("--after", metavar="DATE", help="Ingested on or after (ISO-8601, UTC by default).")
@click.option("--before", metavar="DATE", help="Ingested before (ISO-8601, exclusive).")
@click.option("--semantic", is_flag=True, help="Search TEXT by meaning, not by words.")
@click.option("--like", "like", metavar="ID", help="Images similar to this one (by meaning).")
@click.option("--json", "as_json", is_flag=True, help="Print {total, hits} as JSON.")
@pass_ctx
def search(
    ctx: CliContext,
    text: str | None,
    labels: tuple[str, ...],
    match_any: bool,
    min_confidence: float,
    limit: int,
    offset: int,
    sort: str,
    moderation: str | None,
    after: str | None,
    before: str | None,
    semantic: bool,
    like: str | None,
    as_json: bool,
) -> None:
    """Find images by label (with a minimum confidence) and/or free text, by meaning
    (--semantic "a dog on a beach") or by example (--like ID).

    TEXT may use the search box syntax: label:dog label:"golden retriever" confidence>=90
    after:2026-01-01 before:2026-02-01 unsafe|safe sort:newest; other words are free text.
    """
    from imagedex.index.query_syntax import parse_query
    from imagedex.search import search_json, with_vector

    try:
        base = SearchQuery(
            labels=labels,
            match_all_labels=not match_any,
            min_confidence=min_confidence,
            limit=limit,
            offset=offset,
            sort=sort,
            moderation=moderation or "",
            date_from=after,
            date_to=before,
        )
        query = parse_query(text, base) if text else base
    except ValueError as exc:  # QuerySyntaxError is one
        raise click.UsageError(str(exc)) from None
    query = with_vector(ctx.services, query, semantic=semantic, like=like)
    result = search_json(ctx.services, query)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{result['total']} image(s)")
    table.add_column("title")
    table.add_column("labels")
    table.add_column("location", overflow="fold")
    for hit in result["hits"]:
        table.add_row(hit["title"], _label_summary(hit["labels"]), hit["s3_location"])
    out.print(table)


@main.command()
@click.argument("title_or_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole document as JSON.")
@pass_ctx
def show(ctx: CliContext, title_or_id: str, as_json: bool) -> None:
    """What one image shows: its labels and metadata (by id, title or key)."""
    from imagedex.search import document_json, resolve_document

    doc = resolve_document(ctx.services, title_or_id)
    if doc is None:
        raise click.ClickException(f"no indexed image with id, title or key {title_or_id!r}")
    data = document_json(doc)
    if as_json:
        print_json(data)
        return
    out.print(f"[bold]{doc.title}[/bold]  ({doc.width}×{doc.height}, {doc.content_type})")
    out.print(f"id {doc.id}\n{doc.s3_location}")
    if doc.description:
        out.print(f"[italic]{doc.description}[/italic]")
    table = Table()
    table.add_column("label")
    table.add_column("confidence", justify="right")
    table.add_column("parents")
    for label in doc.labels:
        table.add_row(label.label, f"{label.confidence:.1f}%", ", ".join(label.parents[:5]))
    out.print(table)


@main.command()
@click.option("--top", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--min-confidence", type=click.FloatRange(0, 100), default=0.0)
@click.option("--json", "as_json", is_flag=True, help="Print {labels: [{label, count}]}.")
@pass_ctx
def labels(ctx: CliContext, top: int, min_confidence: float, as_json: bool) -> None:
    """Label counts: how many images show each label, most common first."""
    from imagedex.search import labels_json

    data = labels_json(ctx.services, top, min_confidence)
    if as_json:
        print_json(data)
        return
    table = Table()
    table.add_column("label")
    table.add_column("images", justify="right")
    for row in data["labels"]:
        table.add_row(row["label"], str(row["count"]))
    out.print(table)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def status(ctx: CliContext, as_json: bool) -> None:
    """Queue depth, dead letters and documents indexed."""
    services = ctx.services
    stats = services.queue.stats()
    data = {
        "data_dir": str(services.settings.data_dir),
        "store": services.settings.store_url,
        "queue": {"visible": stats.visible, "in_flight": stats.in_flight, "dead": stats.dead},
        "documents": services.index.count(),
    }
    print_fields(data, as_json)


# -- dead letters -----------------------------------------------------------------------------


@main.group()
def dlq() -> None:
    """Inspect and retry messages that failed processing."""


def _dead_letter_row(letter: Any) -> dict[str, Any]:
    from imagedex.ingest.events import parse_notification

    try:
        keys = [e.key for e in parse_notification(letter.body)]
    except ImagedexError:
        keys = []
    return {
        "id": letter.id,
        "keys": keys,
        "error": letter.error,
        "receive_count": letter.receive_count,
        "failed_at": letter.failed_at,
        "body": letter.body,
    }


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def dlq_list(ctx: CliContext, limit: int, as_json: bool) -> None:
    """Dead-lettered messages with the reason they failed."""
    rows = [_dead_letter_row(d) for d in ctx.services.queue.dead_letters(limit)]
    if as_json:
        print_json({"total": ctx.services.queue.stats().dead, "messages": rows})
        return
    table = Table(title=f"{len(rows)} dead letter(s)")
    table.add_column("id")
    table.add_column("object")
    table.add_column("receives", justify="right")
    table.add_column("reason", overflow="fold")
    for row in rows:
        table.add_row(row["id"], ", ".join(row["keys"]), str(row["receive_count"]), row["error"])
    out.print(table)


@dlq.command("retry")
@click.argument("ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def dlq_retry(ctx: CliContext, ids: tuple[str, ...], retry_all: bool, as_json: bool) -> None:
    """Send dead letters (the given ids, or --all) back to the queue."""
    if not ids and not retry_all:
        raise click.UsageError("give message ids or --all")
    moved = ctx.services.queue.redrive(None if retry_all else list(ids))
    if as_json:
        print_json({"retried": moved})
    else:
        console.print(f"{moved} message(s) sent back to the queue")


@main.command()
@click.option("--analyzer", help="Only images where this analyzer is missing or outdated.")
@click.option("--label", help="Only images with this label (parents and aliases count).")
@click.option("--all", "force", is_flag=True, help="Every selected image, even if current.")
@click.option(
    "--process/--no-process",
    default=True,
    show_default=True,
    help="On the embedded queue, also do the work in this process (else workers do it).",
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def reprocess(
    ctx: CliContext,
    analyzer: str | None,
    label: str | None,
    force: bool,
    process: bool,
    as_json: bool,
) -> None:
    """Re-run recognition on stored images after a model or setting changed.

    Without --all, only images analysed by other analyzer versions are redone, so an
    interrupted run continues where it stopped when run again.
    """
    from imagedex.ingest.reprocess import Selection, enqueue
    from imagedex.ingest.worker import Worker

    services = ctx.services
    selection = Selection(analyzer=analyzer, label=label, force=force)
    with progress_display(as_json) as progress:
        queued = progress.add_task("queued for reprocessing", total=None)
        sent = enqueue(services, selection, lambda n: progress.update(queued, completed=n))
        stats = None
        if process and sent and services.settings.queue in ("", "sqlite"):
            done = progress.add_task("reprocessed", total=sent)
            runner = Worker(
                services, on_batch=lambda s: progress.update(done, completed=s.messages)
            )
            stats = runner.run(once=True)
    result = {
        "queued": sent,
        "processed": stats.messages if stats else 0,
        "indexed": stats.indexed if stats else 0,
        "dead_lettered": stats.dead_lettered if stats else 0,
    }
    if as_json:
        print_json(result)
    else:
        console.print(
            f"{sent} image(s) queued; {result['indexed']} reprocessed here"
            if stats
            else f"{sent} image(s) queued for the workers"
        )


# -- index maintenance ------------------------------------------------------------------------


@main.group("index")
def index_group() -> None:
    """Move and migrate the search index (SQLite, OpenSearch, Elasticsearch)."""


@index_group.command("copy")
@click.option("--from", "source", required=True, help="Index URL to read ('sqlite' = data dir).")
@click.option("--to", "target", required=True, help="Index URL to write.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def index_copy(ctx: CliContext, source: str, target: str, as_json: bool) -> None:
    """Copy every document from one index to another (same ids: safe to run again)."""
    from imagedex.index import open_index

    settings = ctx.settings
    src = open_index(source, settings.data_dir, settings)
    dst = open_index(target, settings.data_dir, settings)
    total = src.count()
    copied = 0
    batch = []
    with progress_display(as_json) as progress:
        task = progress.add_task("copying", total=total)
        for doc in src.iter_documents():
            batch.append(doc)
            if len(batch) == 500:
                dst.upsert(batch)
                copied += len(batch)
                progress.update(task, completed=copied)
                batch = []
        if batch:
            dst.upsert(batch)
            copied += len(batch)
            progress.update(task, completed=copied)
    result = {"from": source, "to": target, "copied": copied, "target_count": dst.count()}
    if as_json:
        print_json(result)
    else:
        console.print(f"copied {copied} documents; {target} now holds {result['target_count']}")


@index_group.command("migrate")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def index_migrate(ctx: CliContext, as_json: bool) -> None:
    """Rebuild an OpenSearch/Elasticsearch index with the current mapping behind its alias
    (new versioned index, copy, atomic alias swap: no outage)."""
    index = ctx.services.index
    if not isinstance(index, MigratableIndex):
        raise click.UsageError("migrate applies to OpenSearch/Elasticsearch indexes")
    with progress_display(as_json) as progress:
        task = progress.add_task("migrating", total=index.count())
        result = index.migrate(on_progress=lambda n: progress.update(task, completed=n))
    if as_json:
        print_json(result)
    else:
        console.print(
            f"{result['documents']} documents moved from {result['from']} to {result['to']}"
        )


# -- AWS --------------------------------------------------------------------------------------


@main.group()
def aws() -> None:
    """Set up and inspect the AWS path (S3 bucket -> SQS queue -> workers).

    Uses IMAGEDEX_STORE=s3://BUCKET and IMAGEDEX_QUEUE=sqs://QUEUE, and boto3's usual settings
    (AWS_DEFAULT_REGION, credentials, AWS_ENDPOINT_URL for S3-compatible stores or moto).
    """


def _aws_target(settings: Settings) -> Any:
    from urllib.parse import urlparse

    from imagedex.aws.setup import AwsTarget

    store = urlparse(settings.store_url)
    if store.scheme != "s3" or not store.netloc:
        raise click.UsageError("set IMAGEDEX_STORE=s3://BUCKET[/prefix] for the AWS path")
    if not settings.queue.startswith("sqs://"):
        raise click.UsageError("set IMAGEDEX_QUEUE=sqs://QUEUE-NAME for the AWS path")
    return AwsTarget(
        bucket=store.netloc,
        queue=settings.queue.removeprefix("sqs://"),
        prefix=store.path.strip("/") + "/" if store.path.strip("/") else "",
    )


@aws.command("setup")
@click.option("--max-receive-count", type=click.IntRange(1, 1000), help="Attempts before the DLQ.")
@click.option("--visibility-timeout", type=click.IntRange(1, 43200), help="Seconds.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def aws_setup_command(
    ctx: CliContext, max_receive_count: int | None, visibility_timeout: int | None, as_json: bool
) -> None:
    """Create (idempotently) the bucket, the queue and its DLQ, the queue policy and the
    bucket's event notifications for image files."""
    from imagedex.aws import client
    from imagedex.aws import setup as aws_setup

    settings = ctx.settings
    result = aws_setup.setup(
        _aws_target(settings),
        client("s3"),
        client("sqs"),
        max_receive_count=max_receive_count or settings.max_receive_count,
        visibility_timeout=visibility_timeout or int(settings.visibility_timeout),
    )
    print_fields(result, as_json)


@aws.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def aws_status_command(ctx: CliContext, as_json: bool) -> None:
    """Queue depth, messages in flight and dead letters, and the notification rules."""
    from imagedex.aws import client
    from imagedex.aws import setup as aws_setup

    result = aws_setup.status(_aws_target(ctx.settings), client("s3"), client("sqs"))
    print_fields(result, as_json)


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
for _group in ("access", "reports", "alerts", "kibana", "deliveries"):
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
