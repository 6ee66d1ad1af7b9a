"""Routes: the people found in faces (list, one person, name, hide, merge, split a face off,
forget). Answers
carry boxes and person ids, never a face embedding."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from imagedex.api.deps import AdminDep, EditorDep, ServicesDep, ViewerDep
from imagedex.errors import ConfigError
from imagedex.people import manage
from imagedex.people.store import PeopleStore, Person
from imagedex.services import Services

router = APIRouter()


def _store(services: Services) -> PeopleStore:
    return PeopleStore.in_data_dir(services.settings.data_dir)


def _person(store: PeopleStore, reference: str) -> Person:
    try:
        return manage.resolve(store, reference)
    except manage.PersonNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConfigError as exc:  # a name several people have
        raise HTTPException(409, str(exc)) from None


def _with_thumbnail(services: Services, data: dict[str, Any]) -> dict[str, Any]:
    """The cover face's image thumbnail and box, for the People page to crop."""
    from imagedex.thumbnails import thumbnail_url

    cover = data.get("cover")
    doc = services.index.get(cover["id"]) if cover else None
    if cover and doc is not None and cover["face"] < len(doc.faces):
        cover["thumbnail"] = thumbnail_url(doc.id, doc.etag, services.settings.thumbnail_size)
        cover["bbox"] = doc.faces[cover["face"]].get("bbox")
    return data


@router.get("/api/people", tags=["people"])
def list_people(
    services: ServicesDep,
    _who: ViewerDep,
    hidden: bool = Query(False, description="Hidden people too."),
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    """People with their number of faces, most faces first, each with a cover face."""
    store = _store(services)
    found = store.people(include_hidden=hidden, limit=limit, offset=offset)
    faces, waiting, total = store.counts()
    return {
        "people": [_with_thumbnail(services, p.to_dict()) for p in found],
        "total": total,
        "faces": faces,
        "waiting": waiting,
    }


@router.get("/api/people/{person}", tags=["people"])
def get_person(
    services: ServicesDep, _who: ViewerDep, person: str, faces: int = Query(100, ge=1, le=1000)
) -> dict[str, Any]:
    """One person (id or name) and their faces: image id, face index, box, confidence."""
    store = _store(services)
    data = _with_thumbnail(services, manage.person_json(store, _person(store, person), faces))
    _face_thumbnails(services, data["face_list"])
    return data


def _face_thumbnails(services: Services, faces: list[dict[str, Any]]) -> None:
    """Each face's image thumbnail, for the page to crop the face from."""
    from imagedex.thumbnails import thumbnail_url

    docs: dict[str, Any] = {}
    for face in faces:
        if face["id"] not in docs:
            docs[face["id"]] = services.index.get(face["id"])
        doc = docs[face["id"]]
        if doc is not None:
            face["thumbnail"] = thumbnail_url(doc.id, doc.etag, services.settings.thumbnail_size)


class PersonChange(BaseModel):
    name: str | None = Field(None, description="A new name.")
    hidden: bool | None = Field(None, description="Leave out of the People page.")


@router.patch("/api/people/{person}", tags=["people"])
def change_person(
    services: ServicesDep, _who: EditorDep, person: str, change: PersonChange
) -> dict[str, Any]:
    """Name, rename, hide or show a person."""
    store = _store(services)
    found = _person(store, person)
    if change.name is not None:
        try:
            store.rename(found.id, manage.clean_name(change.name))
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
    if change.hidden is not None:
        store.set_hidden(found.id, change.hidden)
    now = store.get(found.id)
    assert now is not None
    return now.to_dict()


class Merge(BaseModel):
    other: str = Field(description="The person (id or name) whose faces move; it goes away.")


@router.post("/api/people/{person}/merge", tags=["people"])
def merge_people(
    services: ServicesDep, _who: EditorDep, person: str, body: Merge
) -> dict[str, Any]:
    """Make the other person's faces this person's."""
    store = _store(services)
    keep, other = _person(store, person), _person(store, body.other)
    try:
        return manage.merge(store, services.index, keep, other).to_dict()
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None


class Split(BaseModel):
    to: str | None = Field(None, description="The person (id or name) the face moves to.")
    new: bool = Field(False, description="Make the face a new person of its own.")


@router.post("/api/people/{person}/faces/{face_id}/split", tags=["people"])
def split_face(
    services: ServicesDep,
    _who: EditorDep,
    person: str,
    face_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: Split,
) -> dict[str, Any]:
    """Take a face off this person ("not this person"): to `to`, to a new person (`new`), or
    (neither) to nobody. The face is never grouped with this person again."""
    if body.to is not None and body.new:
        raise HTTPException(422, "give either `to` or `new`, not both")
    store = _store(services)
    found = _person(store, person)
    target = _person(store, body.to) if body.to is not None else None
    try:
        return manage.split(store, services.index, face_id, target, body.new, person=found)
    except manage.FaceNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConfigError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/api/people/forget", tags=["people"])
def forget_people(services: ServicesDep, _who: AdminDep) -> dict[str, int]:
    """Delete every face embedding and every person (the face boxes stay on the images)."""
    return manage.forget(_store(services), services.index)
