"""`imagedex people`: the people found in the collection's faces: list, show, name, merge,
split, hide, forget."""

from __future__ import annotations

import sys

import click

from imagedex.cli.common import CliContext, pass_ctx, print_fields, print_outcome, print_table
from imagedex.people.store import PeopleStore


def _store(ctx: CliContext) -> PeopleStore:
    return PeopleStore.in_data_dir(ctx.settings.data_dir)


@click.group()
def people() -> None:
    """The people found in the faces of the collection (grouped as images are indexed)."""


@people.command("list")
@click.option("--all", "show_all", is_flag=True, help="Hidden people too.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def people_list(ctx: CliContext, show_all: bool, limit: int, as_json: bool) -> None:
    """People with their number of faces and of images, most faces first."""
    found = _store(ctx).people(include_hidden=show_all, limit=limit)
    rows = [p.to_dict() for p in found]
    print_table(
        rows,
        as_json,
        {"people": rows},
        ["id", "name", "faces", "images", "hidden"],
        lambda r: [
            str(r["id"]),
            r["name"] or "(unnamed)",
            str(r["faces"]),
            str(r["images"]),
            "yes" * r["hidden"],
        ],
        empty="no people yet (faces are grouped once the faces analyzer has seen a few alike)",
    )


@people.command("show")
@click.argument("person")
@click.option("--faces", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def people_show(ctx: CliContext, person: str, faces: int, as_json: bool) -> None:
    """One person (an id or a name) with their faces: face id, image, face index."""
    from imagedex.people.manage import person_json, resolve

    store = _store(ctx)
    data = person_json(store, resolve(store, person), faces)
    if as_json:
        print_fields(data, True)
        return
    print_fields({k: v for k, v in data.items() if k not in ("face_list", "cover")}, False)
    for face in data["face_list"]:
        click.echo(
            f"  face {face['face_id']}: image {face['id']} face {face['face']}"
            f" ({face['confidence']:.0f}%)"
        )


@people.command("name")
@click.argument("person")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def people_name(ctx: CliContext, person: str, name: str, as_json: bool) -> None:
    """Name (or rename) a person: PERSON is an id or the current name."""
    from imagedex.people.manage import clean_name, resolve

    store = _store(ctx)
    found = resolve(store, person)
    store.rename(found.id, clean_name(name))
    named = store.get(found.id)
    assert named is not None
    print_outcome(named.to_dict(), as_json, f"person {named.id} is now {named.name!r}")


@people.command("hide")
@click.argument("person")
@click.option("--undo", is_flag=True, help="Show the person again.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def people_hide(ctx: CliContext, person: str, undo: bool, as_json: bool) -> None:
    """Leave a person out of the People page and `people list` (their faces stay)."""
    from imagedex.people.manage import resolve

    store = _store(ctx)
    found = resolve(store, person)
    store.set_hidden(found.id, not undo)
    state = "shown" if undo else "hidden"
    print_outcome({"id": found.id, "hidden": not undo}, as_json, f"person {found.id} {state}")


@people.command("merge")
@click.argument("person")
@click.argument("other")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def people_merge(ctx: CliContext, person: str, other: str, as_json: bool) -> None:
    """Make OTHER's faces PERSON's (the same person, found twice); OTHER goes away."""
    from imagedex.people import manage

    store = _store(ctx)
    keep, gone = manage.resolve(store, person), manage.resolve(store, other)
    merged = manage.merge(store, ctx.services.index, keep, gone)
    print_outcome(
        merged.to_dict(),
        as_json,
        f"person {gone.id} merged into {merged.id} ({merged.faces} faces)",
    )


@people.command("split")
@click.argument("face_id", type=click.IntRange(1, 2**63 - 1), metavar="FACE_ID")
@click.option("--to", "to", metavar="PERSON", help="Move the face to this person (id or name).")
@click.option("--new", is_flag=True, help="Make the face a new person of its own.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def people_split(ctx: CliContext, face_id: int, to: str | None, new: bool, as_json: bool) -> None:
    """Take a wrongly grouped face off its person (FACE_ID from `people show`): to another
    person, a new one, or (neither option) to nobody. It is never grouped with that person
    again, even when the image is reprocessed."""
    from imagedex.people import manage

    store = _store(ctx)
    target = manage.resolve(store, to) if to is not None else None
    done = manage.split(store, ctx.services.index, face_id, target, new)

    def who(person: int | None) -> str:
        return f"person {person}" if person is not None else "nobody"

    message = f"face {face_id} moved from {who(done['from'])} to {who(done['to'])}"
    print_outcome(done, as_json, message)


@people.command("forget")
@click.option("--yes", "-y", is_flag=True, help="Forget without asking (needed when not typed).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def people_forget(ctx: CliContext, yes: bool, as_json: bool) -> None:
    """Delete every face embedding and every person (face boxes stay on the images)."""
    from imagedex.people import manage

    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("forgetting needs --yes when not run from a terminal")
        click.confirm("Delete every face embedding and every person?", abort=True, err=True)
    done = manage.forget(_store(ctx), ctx.services.index)
    print_outcome(
        done,
        as_json,
        f"{done['faces']} face embedding(s) and {done['people']} person(s) deleted",
    )


COMMANDS: list[click.Command] = [people]
