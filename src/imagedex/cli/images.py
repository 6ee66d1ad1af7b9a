"""Commands on the collection: ingest, search, show, labels, status, reprocess."""

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from imagedex.cli.common import (
    CliContext,
    console,
    out,
    pass_ctx,
    print_cells,
    print_fields,
    print_json,
    print_outcome,
    progress_display,
)
from imagedex.cli.serve import run_worker_thread
from imagedex.documents import SearchQuery


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--title", help="Title for the uploaded image(s) (default: the file name).")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an object that holds other bytes under the same key (default: keep both).",
)
@click.option("--wait", is_flag=True, help="Return only when indexed or dead-lettered.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="With --wait: give up when no image has finished for this many seconds.",
)
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
    overwrite: bool,
    wait: bool,
    timeout: float,
    process: bool,
    as_json: bool,
) -> None:
    """Upload image files or folders (folders: images found below them) for indexing.

    Each file's key is its path below the common folder of PATHS (`c1/pic.jpg c2/pic.jpg`
    stay apart; a folder keeps its own name). Bytes already stored under their key are left
    alone; other bytes under a taken key go beside it as NAME~HASH.EXT (both kept, the title
    stays the file name) unless --overwrite. Files that are not images are refused before they
    are stored. Exits 1 if any file was refused, failed or was not indexed in time (--wait).
    """
    from imagedex.ingest.upload import upload_paths, wait_for

    services = ctx.services
    with progress_display(as_json) as progress:
        task = progress.add_task("uploading", total=None)
        uploads, refused = upload_paths(
            services,
            paths,
            title=title,
            overwrite=overwrite,
            on_upload=lambda _u: progress.advance(task),
        )
        progress.update(task, total=len(uploads) + len(refused))
        outcomes: list[Any] | None = [] if wait else None
        if wait and uploads:
            worker = None
            if (
                process
                and not services.store.emits_events()
                and services.settings.queue in ("", "sqlite")
            ):
                worker = run_worker_thread(services)
            waiting = progress.add_task("indexing", total=len(uploads))
            outcomes = wait_for(
                services,
                uploads,
                timeout,
                on_progress=lambda done, _total: progress.update(waiting, completed=done),
                worker_alive=worker[0].is_alive if worker is not None else None,
            )
            if worker is not None:
                worker[1].set()
                worker[0].join(timeout=60)
    _report_uploads(uploads, refused, as_json, wait)
    if outcomes is not None:
        _report_outcomes(outcomes, refused, as_json)
    elif as_json:
        print_json(
            {
                "uploaded": [u.__dict__ for u in uploads],
                "refused": [r.__dict__ for r in refused],
            }
        )
    if refused or any(o.status != "indexed" for o in outcomes or ()):
        sys.exit(1)


def _report_uploads(uploads: list[Any], refused: list[Any], as_json: bool, wait: bool) -> None:
    """For people, on stderr: what was stored how, each key chosen or object replaced, each
    refusal with its reason."""
    if as_json:
        return
    counts: dict[str, int] = {}
    for upload in uploads:
        counts[upload.action] = counts.get(upload.action, 0) + 1
        if upload.action == "renamed":
            console.print(
                f"kept both: {upload.path} stored as {upload.key} "
                f"({upload.wanted_key} holds another image)",
                markup=False,
                soft_wrap=True,
            )
        elif upload.action == "overwritten":
            console.print(
                f"overwrote {upload.key} with {upload.path}", markup=False, soft_wrap=True
            )
    for refusal in refused:
        console.print(f"refused {refusal.path}: {refusal.reason}", markup=False, soft_wrap=True)
    done = (
        ", ".join(f"{n} {_ACTION_WORDS.get(action, action)}" for action, n in counts.items())
        or "nothing stored"
    )
    stored = any(u.action != "unchanged" for u in uploads)
    tail = "; the worker will index them" if stored and not wait else ""
    console.print(
        f"{len(uploads) + len(refused)} file(s): {done}"
        + (f", {len(refused)} refused" if refused else "")
        + tail,
        markup=False,
    )


def _report_outcomes(outcomes: list[Any], refused: list[Any], as_json: bool) -> None:
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in _OUTCOMES}
    if as_json:
        print_json(
            {
                **counts,
                "refused": len(refused),
                "results": [
                    {**o.upload.__dict__, "status": o.status, "reason": o.reason} for o in outcomes
                ]
                + [{"path": r.path, "status": "refused", "reason": r.reason} for r in refused],
            }
        )
        return
    if not outcomes:
        return
    console.print(f"indexed {counts['indexed']} of {len(outcomes)}")
    for o in outcomes:
        if o.status != "indexed":
            console.print(
                f"{o.status} {o.upload.path} ({o.upload.key}): {o.reason}",
                markup=False,
                soft_wrap=True,
            )


_OUTCOMES = ("indexed", "failed", "replaced", "pending")
_ACTION_WORDS = {
    "uploaded": "stored",
    "unchanged": "already stored (unchanged)",
    "renamed": "stored under a new key",
    "overwritten": "overwritten",
    "retitled": "stored again with the new title",
}


def _date_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A date option in the canonical form, or the option's own error naming the forms."""
    from imagedex.documents import utc_timestamp

    if value is None:
        return None
    try:
        return utc_timestamp(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _label_summary(labels: list[dict[str, Any]], n: int = 4) -> str:
    return ", ".join(f"{lb['label']} {lb['confidence']:.0f}%" for lb in labels[:n])


@click.command()
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
@click.option(
    "--after",
    metavar="DATE",
    callback=_date_option,
    help="Ingested on or after: 2026-01-31, 2026-01-31T08:00:00+02:00 (UTC without an offset), "
    "today, yesterday, -7d, -2h.",
)
@click.option(
    "--before",
    metavar="DATE",
    callback=_date_option,
    help="Ingested before (exclusive); same forms as --after.",
)
@click.option(
    "--person",
    "persons",
    multiple=True,
    metavar="NAME",
    help="Images showing this person (a name or id from `imagedex people list`); repeatable.",
)
@click.option("--semantic", is_flag=True, help="Search TEXT by meaning, not by words.")
@click.option(
    "--like", "like", metavar="ID", help="Images that look like this one (whatever their names)."
)
@click.option(
    "--count-up-to",
    "track_total",
    type=click.IntRange(min=0),
    default=0,
    help="Count matches exactly up to N and show N+ beyond (faster for broad text); 0: all.",
)
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
    persons: tuple[str, ...],
    semantic: bool,
    like: str | None,
    track_total: int,
    as_json: bool,
) -> None:
    """Find images by label (with a minimum confidence) and/or free text, by meaning
    (--semantic "a dog on a beach") or by example (--like ID: images that look alike).

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
            people=persons,
            track_total=track_total,
        )
    except ValueError as exc:  # the options' own names, not the query's fields
        message = str(exc).replace("date_from", "--after").replace("date_to", "--before")
        raise click.UsageError(message) from None
    try:
        query = parse_query(text, base) if text else base
    except ValueError as exc:  # QuerySyntaxError is one
        raise click.UsageError(str(exc)) from None
    _known_people(ctx, query.people)
    query = with_vector(ctx.services, query, semantic=semantic, like=like)
    result = search_json(ctx.services, query)
    if as_json:
        print_json(result)
        return
    if not result["hits"]:
        console.print(
            _why_nothing(ctx.services, query, result["total"]), markup=False, soft_wrap=True
        )
        return
    print_cells(
        ("id", "title", "key", "labels"),
        [(h["id"], h["title"], h["key"], _label_summary(h["labels"], 3)) for h in result["hits"]],
        title=f"{result['total']:,}{'+' if result['total_is_lower_bound'] else ''} image(s)",
    )


def _why_nothing(services: Any, query: SearchQuery, total: int) -> str:
    """Instead of an empty table: past the last page, or which label no image has (with the
    collection's labels that are spelt alike), or simply no match."""
    if total:
        return f"no images past the first {total} (offset {query.offset})"
    unknown = [lb for lb in query.labels if not _some_image_has(services, lb)]
    if not unknown:
        return "no image matches this search"
    import difflib

    known = [c.label for c in services.index.top_labels(10_000, 0.0, True)]
    by_lower = {name.lower(): name for name in known}
    hints = []
    for label in unknown:
        close = difflib.get_close_matches(label.lower(), list(by_lower), n=3, cutoff=0.6)
        hint = f"no image has the label {label!r}"
        if close:
            hint += " (labels in the collection spelt alike: "
            hint += ", ".join(by_lower[c] for c in close) + ")"
        hints.append(hint)
    return "; ".join(hints) + "; `imagedex labels --parents` lists them all"


def _some_image_has(services: Any, label: str) -> bool:
    return bool(services.index.search(SearchQuery(labels=(label,), limit=1)).total)


@click.command()
@click.argument("title_or_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole document as JSON.")
@pass_ctx
def show(ctx: CliContext, title_or_id: str, as_json: bool) -> None:
    """What one image shows: its labels and metadata (by id, or by a key or title that names
    one image; when several images have it they are listed with their ids, and it exits 1)."""
    from imagedex.search import document_json, with_near_duplicates

    doc = _one_document(ctx.services, title_or_id, as_json)
    data = with_near_duplicates(ctx.services, doc, document_json(doc))
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


_LISTED_MATCHES = 20


def _one_document(services: Any, argument: str, as_json: bool) -> Any:
    """The image an id, or a key or title, names; several with that key or title are listed
    on stdout (ids whole; `{matches: [...]}` with --json) and end the command with exit code 1,
    none with one error line."""
    from imagedex.documents import document_id

    index = services.index
    doc = index.get(argument)
    if doc is not None:
        return doc
    # a key is unique, but people type `pic.jpg` meaning the title that other images share
    keyed = index.get(document_id(services.store.bucket, argument))
    titled = index.find_by_title(argument, limit=_LISTED_MATCHES + 1)
    if keyed is not None:
        titled = [keyed, *(d for d in titled if d.id != keyed.id)]
    if len(titled) == 1:
        return titled[0]
    if not titled:
        raise click.ClickException(
            f"no indexed image has the id, key or title {argument!r} "
            "(`imagedex search` lists ids and keys)"
        )
    shown = titled[:_LISTED_MATCHES]
    count = f"more than {len(shown)}" if len(titled) > len(shown) else str(len(titled))
    if as_json:
        print_json({"matches": [{"id": d.id, "key": d.key, "title": d.title} for d in shown]})
    else:
        print_cells(
            ("id", "key", "ingested"),
            [(d.id, d.key, (d.ingested_at or "")[:19].replace("T", " ")) for d in shown],
        )
    console.print(
        f"{count} images have the key or title {argument!r}: show one by its id", markup=False
    )
    sys.exit(1)


@click.command()
@click.option("--top", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--min-confidence", type=click.FloatRange(0, 100), default=0.0)
@click.option(
    "--parents",
    is_flag=True,
    help="Count broader labels too (Dog, Animal), not only the most specific ones.",
)
@click.option("--json", "as_json", is_flag=True, help="Print {labels: [{label, count}]}.")
@pass_ctx
def labels(ctx: CliContext, top: int, min_confidence: float, parents: bool, as_json: bool) -> None:
    """Label counts: how many images show each label, most common first. Each image counts
    once per most specific label (Golden Retriever, not also Dog and Animal) unless --parents."""
    from imagedex.search import labels_json

    data = labels_json(ctx.services, top, min_confidence, parents)
    if as_json:
        print_json(data)
        return
    table = Table()
    table.add_column("label")
    table.add_column("images", justify="right")
    for row in data["labels"]:
        table.add_row(row["label"], str(row["count"]))
    out.print(table)


@click.command()
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


@click.command()
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
    print_outcome(
        result,
        as_json,
        f"{sent} image(s) queued; {result['indexed']} reprocessed here"
        if stats
        else f"{sent} image(s) queued for the workers",
    )


# -- index maintenance ------------------------------------------------------------------------


def _known_people(ctx: CliContext, references: tuple[str, ...]) -> None:
    """A person nobody is called is a typo, not a search with no results."""
    from imagedex.people.store import PeopleResolver

    resolve = PeopleResolver(ctx.settings.data_dir)
    for reference in references:
        if not resolve(reference):
            raise click.UsageError(
                f"no person {reference!r}: `imagedex people list` shows the names and ids"
            )


COMMANDS: list[click.Command] = [ingest, search, show, labels, status, reprocess]
