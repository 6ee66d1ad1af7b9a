"""Routes: labels taught by example and a person's corrections of an image's labels.

Teaching, retraining and forgetting answer at once; re-labelling the existing collection runs
in a background thread (one at a time), its progress in `GET /api/custom/{name}` (`applying`).
Examples are indexed images only: the API never reads files of the server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from imagedex.api.deps import EditorDep, ServicesDep, ViewerDep
from imagedex.custom import manage
from imagedex.custom.examples import CustomLabelError, ImageNotFoundError
from imagedex.services import Services

router = APIRouter()
log = logging.getLogger("imagedex.api.custom")
_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custom-labels")
_lock = threading.Lock()


def _answer(call: Any) -> Any:
    try:
        return call()
    except (ImageNotFoundError, manage.LabelNotFoundError) as exc:
        raise HTTPException(404, str(exc)) from None
    except CustomLabelError as exc:
        raise HTTPException(422, str(exc)) from None


def _relabel_later(services: Services, names: list[str], dropped: Sequence[str] = ()) -> None:
    def run() -> None:
        store = manage.store_of(services)
        try:
            with _lock:
                manage.relabel_collection(services, store, names, dropped=dropped)
        except Exception as exc:  # recorded as "failed" in the label's progress
            log.warning("re-labelling the collection failed (%s)", exc)
        finally:
            store.close()

    _background.submit(run)


@router.get("/api/custom", tags=["custom labels"])
def list_labels(services: ServicesDep, _who: ViewerDep) -> dict[str, Any]:
    """Taught labels: examples, estimated precision and recall, re-labelling progress; and
    `collecting`: labels taught from the image page that have fewer than 3 examples yet."""
    store = manage.store_of(services)
    return {"labels": manage.listing(store), "collecting": manage.collecting(store)}


@router.get("/api/custom/{name}", tags=["custom labels"])
def get_label(services: ServicesDep, _who: ViewerDep, name: str) -> dict[str, Any]:
    """One taught label with its positive and negative examples (image ids)."""
    return _answer(lambda: manage.details(services, manage.store_of(services), name))


class Examples(BaseModel):
    examples: list[str] = Field(
        min_length=1, max_length=1000, description="Image ids, keys or titles (3 for a new label)."
    )


@router.post("/api/custom/{name}/examples", tags=["custom labels"], status_code=202)
def teach_label(
    services: ServicesDep, _who: EditorDep, name: str, body: Examples
) -> dict[str, Any]:
    """Teach a label from example images, or add examples to it (retrains); the collection is
    re-labelled in the background."""
    store = manage.store_of(services)
    taught = _answer(lambda: manage.teach(services, store, name, body.examples, files=False))
    _relabel_later(services, [taught.name])
    return taught.to_dict()


@router.delete("/api/custom/{name}", tags=["custom labels"], status_code=202)
def forget_label(services: ServicesDep, _who: EditorDep, name: str) -> dict[str, Any]:
    """Forget a taught label (it is taken off the images in the background), or the examples
    collected for one not taught yet."""
    store = manage.store_of(services)
    gone, taught = _answer(lambda: manage.forget(services, store, name))
    if taught:
        _relabel_later(services, [], [gone])
    return {"name": gone}


@router.get("/api/images/{doc_id}/tags", tags=["custom labels"])
def image_tags(services: ServicesDep, _who: ViewerDep, doc_id: str) -> dict[str, Any]:
    """The image's labels with their source (model, custom, person) and the removed ones."""
    return _answer(lambda: manage.provenance(services, manage.store_of(services), doc_id))


class Correction(BaseModel):
    label: str = Field(min_length=1, max_length=200)
    action: Literal["add", "remove"]


@router.post("/api/images/{doc_id}/tags", tags=["custom labels"])
def correct_image(
    services: ServicesDep, _who: EditorDep, doc_id: str, body: Correction
) -> dict[str, Any]:
    """Add a label to the image or remove it, for good (a taught label is also retrained)."""
    store = manage.store_of(services)
    with _lock:
        return _answer(lambda: manage.tag(services, store, doc_id, body.label, body.action))


class TeachFromImage(BaseModel):
    label: str = Field(min_length=1, max_length=200)


@router.post("/api/images/{doc_id}/teach", tags=["custom labels"])
def teach_from_image(
    services: ServicesDep, _who: EditorDep, doc_id: str, body: TeachFromImage
) -> dict[str, Any]:
    """This image as an example of a taught label (retrains it), or of a new one: its examples
    are collected until there are 3, then it is taught (`state`: collecting or taught) and the
    collection re-labelled in the background."""
    store = manage.store_of(services)
    with _lock:
        done = _answer(lambda: manage.teach_from_image(services, store, body.label, doc_id))
    if done["state"] == "taught":
        _relabel_later(services, [done["name"]])
    return dict(done)
