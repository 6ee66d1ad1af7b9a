"""`imagedex tag`: a person's corrections of one image's labels, kept for good."""

from __future__ import annotations

import click

from imagedex.cli.common import CliContext, pass_ctx, print_outcome, print_table


@click.group()
def tag() -> None:
    """Correct an image's labels: added or removed for good (they survive reprocessing)."""


def _correct(ctx: CliContext, image: str, label: str, action: str, as_json: bool) -> None:
    from imagedex.custom import manage

    done = manage.tag(ctx.services, manage.store_of(ctx.services), image, label, action)
    if action == "add":
        message = f"{done['label']!r} added to {done['id']} by a person"
    elif done["was_present"]:
        message = f"{done['label']!r} removed from {done['id']}; it will not come back"
    else:
        message = f"{done['label']!r} was not on {done['id']}; it will be kept off"
    print_outcome(done, as_json, message)


@tag.command("add")
@click.argument("image")
@click.argument("label")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tag_add(ctx: CliContext, image: str, label: str, as_json: bool) -> None:
    """Add LABEL to IMAGE (an id, key or title). For a taught label the image becomes one of
    its examples."""
    _correct(ctx, image, label, "add", as_json)


@tag.command("remove")
@click.argument("image")
@click.argument("label")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tag_remove(ctx: CliContext, image: str, label: str, as_json: bool) -> None:
    """Remove LABEL from IMAGE for good. For a taught label the image becomes a counter-example."""
    _correct(ctx, image, label, "remove", as_json)


@tag.command("list")
@click.argument("image")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tag_list(ctx: CliContext, image: str, as_json: bool) -> None:
    """IMAGE's labels with where each comes from (model, custom, person) and its removed ones."""
    from imagedex.custom import manage

    data = manage.provenance(ctx.services, manage.store_of(ctx.services), image)
    print_table(
        data["labels"],
        as_json,
        data,
        ["label", "confidence", "source"],
        lambda r: [r["label"], f"{r['confidence']:.1f}%", r["source"]],
        empty="no labels",
    )
    if not as_json and data["removed"]:
        click.echo("removed by a person: " + ", ".join(data["removed"]))


COMMANDS: list[click.Command] = [tag]
