"""What the CLI and the API do with people: list, show, name, hide, merge, split, forget, and
keep the search index's `faces[].person_id` in step with the people store."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from imagedex.documents import ImageDocument
from imagedex.errors import ConfigError
from imagedex.index.base import SearchIndex
from imagedex.people.clustering import Rule, place_faces
from imagedex.people.store import NewFace, PeopleStore, Person

log = logging.getLogger("imagedex.people")

MAX_NAME = 100


class PersonNotFoundError(ConfigError):
    """No person has that id or name."""


class FaceNotFoundError(ConfigError):
    """No stored face has that id."""


def resolve(store: PeopleStore, reference: str) -> Person:
    """The one person a reference (id, `#id` or name) names; a clear error otherwise."""
    found = store.find(reference)
    if not found:
        raise PersonNotFoundError(
            f"no person {reference!r}: give an id or a name from `imagedex people list`"
        )
    if len(found) > 1:
        ids = ", ".join(str(p.id) for p in found)
        raise ConfigError(f"{len(found)} people are named {reference!r} (ids {ids}): give the id")
    return found[0]


def clean_name(name: str) -> str:
    text = " ".join(name.split())
    if not text:
        raise ConfigError("a person's name cannot be empty")
    if len(text) > MAX_NAME:
        raise ConfigError(f"a person's name is at most {MAX_NAME} characters")
    if any(not ch.isprintable() for ch in text):
        raise ConfigError("a person's name cannot hold control characters")
    return text


def person_json(store: PeopleStore, person: Person, faces: int = 100) -> dict[str, Any]:
    data = person.to_dict()
    data["face_list"] = [f.to_dict() for f in store.faces_of(person.id, limit=faces)]
    return data


def sync_documents(store: PeopleStore, index: SearchIndex, doc_ids: Iterable[str]) -> int:
    """Write each document's faces' person ids as the people store has them now; how many
    documents changed."""
    changed = 0
    for doc_id in sorted(set(doc_ids)):
        doc = index.get(doc_id)
        if doc is None:
            continue
        if set_person_ids(doc, store.document_people(doc_id)):
            index.upsert([doc])
            changed += 1
    return changed


def set_person_ids(doc: ImageDocument, people: dict[int, int | None]) -> bool:
    """Set `person_id` on each face of `doc` from {face index: person}; whether anything changed."""
    changed = False
    for i, face in enumerate(doc.faces):
        person = people.get(i)
        if face.get("person_id") != person:
            if person is None:
                face.pop("person_id", None)
                changed = changed or "person_id" in face
            else:
                face["person_id"] = person
            changed = True
    return changed


def record_faces(
    store: PeopleStore, doc: ImageDocument, faces: Sequence[NewFace], rule: Rule | None = None
) -> set[str]:
    """Store one document's faces (replacing earlier ones), place them among people and set
    its faces' person ids; the ids of *other* documents whose faces gained a person meanwhile
    (waiting faces completed into a new person), which the caller re-syncs."""
    with store.transaction() as db:
        ids = store.replace_faces(db, doc.id, faces)
        changed = place_faces(store, db, ids, rule)
        others = store.documents_of(db, changed) - {doc.id}
    set_person_ids(doc, store.document_people(doc.id))
    return others


def merge(store: PeopleStore, index: SearchIndex, keep: Person, other: Person) -> Person:
    if keep.id == other.id:
        raise ConfigError("give two different people to merge")
    with store.transaction() as db:
        docs = store.documents_of(db, [other.id])
        store.merge(db, keep.id, other.id)
        if not keep.name and other.name:
            db.execute(
                "UPDATE people SET name = ?, name_lower = ? WHERE id = ?",
                (other.name, other.name.lower(), keep.id),
            )
    sync_documents(store, index, docs)
    merged = store.get(keep.id)
    assert merged is not None
    return merged


def split(
    store: PeopleStore,
    index: SearchIndex,
    face_id: int,
    to: Person | None = None,
    new: bool = False,
    person: Person | None = None,
) -> dict[str, Any]:
    """Take a wrongly grouped face off its person: to `to`, to a new person (`new`), or to
    nobody (it waits, and may form a person with other faces, never with this one). The
    clustering keeps to it from now on. `person`: the person the caller believes the face is
    (a page shown earlier); refused when it no longer is."""
    if to is not None and new:
        raise ConfigError("give either a person to move the face to or a new person, not both")
    face = store.face(face_id)
    if face is None:
        raise FaceNotFoundError(
            f"no face {face_id}: `imagedex people show PERSON` lists their faces' ids"
        )
    if person is not None and face.person != person.id:
        raise ConfigError(f"face {face_id} is not person {person.id}'s (any more)")
    if to is not None and to.id == face.person:
        raise ConfigError(f"face {face_id} is person {to.id}'s already")
    if face.person is None and to is None and not new:
        raise ConfigError(f"face {face_id} belongs to no person: give --to PERSON or --new")
    with store.transaction() as db:
        target = store.create_person(db) if new else (to.id if to else None)
        store.move_face(db, face, target)
    sync_documents(store, index, [face.doc])
    return {"face_id": face.id, "id": face.doc, "from": face.person, "to": target}


def forget(store: PeopleStore, index: SearchIndex) -> dict[str, int]:
    """Delete every face embedding and person, and the person ids in the index."""
    docs = store.documents_with_people()
    faces, removed = store.forget()
    synced = sync_documents(store, index, docs)
    return {"faces": faces, "people": removed, "documents": synced}
