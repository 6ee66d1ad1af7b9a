"""Turning what a person names (an image id, key or title; a file) into images and their visual
embeddings, with an error line a person can act on for anything else."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path
from typing import Any

from imagedex.documents import ImageDocument, document_id
from imagedex.errors import ConfigError, ImagedexError

MAX_NAME = 100


class ImageNotFoundError(ImagedexError):
    """No indexed image has that id, key or title."""


class CustomLabelError(ConfigError):
    """A teach or tag request that cannot be done as asked (the message says why and what to do)."""


def clean_label(name: str) -> str:
    """A label as a person typed it, trimmed; one clear error for blank, control or overlong."""
    shown = " ".join(name.split())
    if not shown:
        raise CustomLabelError("a label needs a name: it is blank")
    if any(unicodedata.category(c).startswith("C") for c in shown):
        raise CustomLabelError(f"label {shown!r} contains control characters: type it plainly")
    if len(shown) > MAX_NAME:
        raise CustomLabelError(f"a label is at most {MAX_NAME} characters (this has {len(shown)})")
    return shown


def find_image(services: Any, reference: str) -> ImageDocument:
    """The indexed image an id, a key or a title names (exactly one)."""
    index = services.index
    found = index.get(reference) or index.get(document_id(services.store.bucket, reference))
    if found is not None:
        return found
    titled = index.find_by_title(reference, limit=3)
    if len(titled) == 1:
        return titled[0]
    if titled:
        ids = ", ".join(d.id for d in titled[:2])
        raise CustomLabelError(
            f"several images have the title {reference!r} ({ids}, ...): name one by its id"
        )
    raise ImageNotFoundError(
        f"no indexed image has the id, key or title {reference!r} "
        "(`imagedex search` lists ids and keys)"
    )


def visual_of(document: ImageDocument) -> list[float]:
    if not document.visual_embedding:
        raise CustomLabelError(
            f"image {document.id} ({document.title}) has no visual embedding: it was indexed "
            "without the imagenet analyzer; enable it and run `imagedex reprocess`"
        )
    return document.visual_embedding


def file_example(services: Any, path: Path) -> tuple[str, list[float]]:
    """A file that is not in the collection: ("file:<sha256 prefix>", its visual embedding),
    from the same ImageNet model the indexed images were embedded with."""
    from imagedex.ingest.imaging import decode_image
    from imagedex.services import build_recognizer

    settings = services.settings
    try:
        if path.stat().st_size > settings.max_upload_bytes:
            raise CustomLabelError(
                f"{path} is larger than max_upload_bytes ({settings.max_upload_bytes} bytes)"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise CustomLabelError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        decoded = decode_image(data, max_pixels=settings.max_pixels, draft_size=(320, 320))
    except ImagedexError as exc:
        raise CustomLabelError(f"{path} is not an image imagedex can read: {exc}") from None
    recognizer = build_recognizer(settings, "imagenet")
    if recognizer is None:
        raise CustomLabelError("the imagenet analyzer is not installed: it makes the embeddings")
    analysis = recognizer.analyze([decoded.image])[0]
    if analysis.visual_embedding is None:
        raise CustomLabelError(f"the imagenet analyzer gave {path} no visual embedding")
    return "file:" + hashlib.sha256(data).hexdigest()[:24], list(analysis.visual_embedding)


def resolve_example(
    services: Any, reference: str, files: bool = True
) -> tuple[str, str, list[float]]:
    """(id, what to call it, visual embedding) of an example: an indexed image first, else
    (with `files`: never for the API, which must not read the server's files) a file by that
    path."""
    try:
        doc = find_image(services, reference)
    except ImageNotFoundError:
        if not files:
            raise
        path = Path(reference).expanduser()
        if not path.is_file():
            raise ImageNotFoundError(
                f"example {reference!r} is neither an indexed image (id, key or title) nor a file"
            ) from None
        example_id, vector = file_example(services, path)
        return example_id, str(path), vector
    return doc.id, doc.title, visual_of(doc)
