"""`imagedex index`: copy and migrate the search index."""

import click

from imagedex.cli.common import (
    CliContext,
    pass_ctx,
    print_outcome,
    progress_display,
)
from imagedex.index.base import MigratableIndex


@click.group("index")
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
    message = f"copied {copied} documents; {target} now holds {result['target_count']}"
    print_outcome(result, as_json, message)


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
    message = f"{result['documents']} documents moved from {result['from']} to {result['to']}"
    print_outcome(result, as_json, message)


COMMANDS: list[click.Command] = [index_group]
