"""`imagedex custom`: labels taught by example (teach, list, show, forget)."""

from __future__ import annotations

import click

from imagedex.cli.common import (
    CliContext,
    console,
    pass_ctx,
    print_fields,
    print_outcome,
    print_table,
)


def _progress(done: int, total: int) -> None:
    console.print(f"applied to {done}/{total} images", markup=False)


@click.group()
def custom() -> None:
    """Labels of your own, taught from example images (product lines, SKUs, defects)."""


@custom.command("teach")
@click.argument("name")
@click.argument("examples", nargs=-1, required=True)
@click.option("--no-apply", is_flag=True, help="Train only; label the collection later.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def custom_teach(
    ctx: CliContext, name: str, examples: tuple[str, ...], no_apply: bool, as_json: bool
) -> None:
    """Teach NAME from EXAMPLES (image ids, keys, titles or image files; 3 at least). Teaching
    an existing label adds the examples and retrains it. The collection is then re-labelled."""
    from imagedex.custom import manage

    store = manage.store_of(ctx.services)
    taught = manage.teach(ctx.services, store, name, examples)
    changed = 0
    if not no_apply:
        changed = manage.relabel_collection(
            ctx.services, store, [taught.name], None if as_json else _progress
        )
    data = {**manage.require(store, taught.name).to_dict(), "images_changed": changed}
    print_outcome(
        data,
        as_json,
        f"taught {taught.name!r} from {taught.positives} examples (estimated precision "
        f"{taught.precision:.0%}, recall {taught.recall:.0%}); {changed} images changed",
    )


@custom.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def custom_list(ctx: CliContext, as_json: bool) -> None:
    """Taught labels: examples, estimated precision and recall, how far applying has got."""
    from imagedex.custom import manage

    store = manage.store_of(ctx.services)
    rows = manage.listing(store)
    drafts = manage.collecting(store)
    print_table(
        rows,
        as_json,
        {"labels": rows, "collecting": drafts},
        ["name", "examples", "precision", "recall", "applied"],
        lambda r: [
            r["name"],
            str(r["examples"]),
            f"{r['precision']:.0%}",
            f"{r['recall']:.0%}",
            f"{r['applying']['state']} {r['applying']['done']}/{r['applying']['total']}",
        ],
        empty="no taught labels yet (`imagedex custom teach NAME EXAMPLE...`)",
    )
    if not as_json:
        for draft in drafts:
            click.echo(
                f"collecting {draft['name']}: {draft['examples']} of {draft['needed']} examples "
                "(from the image page)"
            )


@custom.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def custom_show(ctx: CliContext, name: str, as_json: bool) -> None:
    """One taught label with its examples (positive, and negative from corrections)."""
    from imagedex.custom import manage

    data = manage.details(ctx.services, manage.store_of(ctx.services), name)
    if as_json:
        print_fields(data, True)
        return
    shown = {k: v for k, v in data.items() if not k.endswith("_examples")}
    print_fields(shown, False)
    for example in data["positive_examples"]:
        click.echo(f"  example {example}")
    for example in data["negative_examples"]:
        click.echo(f"  not     {example}")


@custom.command("forget")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def custom_forget(ctx: CliContext, name: str, as_json: bool) -> None:
    """Delete a taught label, its examples, and the label from every image (or the examples
    collected on the image page for a label not taught yet)."""
    from imagedex.custom import manage

    store = manage.store_of(ctx.services)
    gone, taught = manage.forget(ctx.services, store, name)
    changed = 0
    if taught:
        changed = manage.relabel_collection(ctx.services, store, [], dropped=[gone])
    print_outcome(
        {"name": gone, "images_changed": changed},
        as_json,
        f"forgot {gone!r}; removed from {changed} images"
        if taught
        else f"forgot the examples collected for {gone!r} (it was not taught yet)",
    )


COMMANDS: list[click.Command] = [custom]
