"""`imagedex delete`: remove images from the index, the bucket and the thumbnail cache."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click

from imagedex.cli.common import CliContext, console, pass_ctx, print_json
from imagedex.documents import ImageDocument, document_id
from imagedex.errors import ImagedexError, ObjectNotFoundError
from imagedex.services import Services

_SHOWN_MATCHES = 5


@dataclass(frozen=True)
class Target:
    """What one argument names: an indexed image, or an object in the bucket alone."""

    argument: str
    document: ImageDocument | None = None
    key: str = ""

    def describe(self) -> str:
        if self.document is not None:
            return f"{self.document.title} ({self.document.key}, id {self.document.id})"
        return f"{self.key} (in the bucket, not indexed)"


def resolve(services: Services, argument: str) -> Target:
    """An id, a key or a title that names exactly one image; ClickException otherwise.

    Ids and keys are unique, so they are tried first; a title is used only when a single
    image has it, because picking one of several would delete the wrong photo."""
    index = services.index
    doc = index.get(argument) or index.get(document_id(services.store.bucket, argument))
    if doc is not None:
        return Target(argument, document=doc)
    titled = index.find_by_title(argument, limit=_SHOWN_MATCHES + 1)
    if len(titled) == 1:
        return Target(argument, document=titled[0])
    if titled:
        shown = titled[:_SHOWN_MATCHES]
        count = f"more than {len(shown)}" if len(titled) > len(shown) else str(len(titled))
        listed = ", ".join(f"{d.id} ({d.key})" for d in shown)
        raise click.ClickException(
            f"{count} images have the title {argument!r}: {listed}; "
            "give the id or key of the one to delete"
        )
    try:
        services.store.head(argument)
    except (ObjectNotFoundError, ImagedexError):
        raise click.ClickException(
            f"no image has the id, key or title {argument!r}; nothing was deleted "
            "(`imagedex search` lists ids and keys)"
        ) from None
    return Target(argument, key=argument)


@click.command()
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking (needed when not typed).")
@click.option("--json", "as_json", is_flag=True, help="Print {deleted: [...]} for scripts.")
@pass_ctx
def delete(ctx: CliContext, images: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Delete images (by id, key, or a title only one image has): their documents, the
    stored objects and their cached thumbnails. Asks first unless --yes; every IMAGE must
    name an image, or nothing is deleted."""
    from imagedex.ingest.delete import delete_document, delete_object

    services = ctx.services
    found = (resolve(services, argument) for argument in images)
    targets = list({t.document.id if t.document else t.key: t for t in found}.values())
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("deleting needs --yes when not run from a terminal")
        for target in targets:
            console.print(f"  {target.describe()}", markup=False, highlight=False)
        click.confirm(f"Delete {len(targets)} image(s) for good?", abort=True, err=True)
    results = []
    for target in targets:
        if target.document is not None:
            deleted = delete_document(services, target.document)
        else:
            deleted = delete_object(services, target.key)
        results.append(deleted)
        if not as_json:
            console.print(f"deleted {target.describe()}", markup=False, highlight=False)
    if as_json:
        print_json({"deleted": [d.to_dict() for d in results]})


COMMANDS: list[click.Command] = [delete]
