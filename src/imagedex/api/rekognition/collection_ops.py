"""The face collection operations (CreateCollection ... SearchFaces) in Rekognition's shapes, on
`collections.py` (the store) and `face_match.py` (faces, descriptors, similarity)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from imagedex.api.rekognition.collections import (
    Collection,
    CollectionExistsError,
    CollectionStore,
    NewFace,
    StoredFace,
)
from imagedex.api.rekognition.errors import RekognitionError
from imagedex.api.rekognition.face_match import (
    FACE_MODEL_VERSION,
    QUALITY,
    FaceEngine,
    Quality,
    distance_for,
    similarity,
)
from imagedex.api.rekognition.images import RequestImage
from imagedex.api.rekognition.operations import face_detail
from imagedex.api.rekognition.params import number, string_list
from imagedex.recognition.face_detection import DetectedFace

_COLLECTION_ID = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")
_EXTERNAL_ID = re.compile(r"[a-zA-Z0-9_.\-:]{1,255}")
_FACE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_IMAGE_IDS = uuid.UUID("5f2b3a8e-4c1d-4e6f-9a7b-2d8c0e1f3a4b")  # namespace of ImageIds
PAGE = 1000  # MaxResults when not given
MAX_PAGE = 4096
MAX_INDEXED = 100  # faces IndexFaces indexes from one image, as Rekognition
MAX_FACES_PER_COLLECTION = 1_000_000  # a search scans them all: see docs/rekognition.md
SEARCH_MAX_FACES = 80  # SearchFaces* MaxFaces when not given
DEFAULT_THRESHOLD = 80.0

#: operations that change a collection: an API key needs the editor role for them
WRITES = frozenset({"CreateCollection", "DeleteCollection", "IndexFaces", "DeleteFaces"})


@dataclass
class FaceContext:
    """What a collection operation works with."""

    store: CollectionStore
    engine: FaceEngine
    image: Callable[[], RequestImage]  # the request's Image, decoded for faces
    arn_prefix: str  # "aws:rekognition:REGION:ACCOUNT:collection/"


def _invalid(message: str) -> RekognitionError:
    return RekognitionError("InvalidParameterException", message)


def _matching(params: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _invalid(f"{name} must match {pattern.pattern}, not {value!r}")
    return value


def _collection(params: dict[str, Any], ctx: FaceContext) -> Collection:
    collection_id = _matching(params, "CollectionId", _COLLECTION_ID)
    if collection_id is None:
        raise _invalid("CollectionId is required")
    found = ctx.store.get(collection_id)
    if found is None:
        raise RekognitionError(
            "ResourceNotFoundException", f"the collection id {collection_id!r} does not exist"
        )
    if found.face_model != FACE_MODEL_VERSION:
        raise _invalid(
            f"collection {collection_id!r} holds faces of face model {found.face_model}, which "
            f"cannot be compared with this server's {FACE_MODEL_VERSION}; create it anew"
        )
    return found


def _quality(params: dict[str, Any], default: str) -> Quality:
    level = params.get("QualityFilter", default)
    if level not in QUALITY:
        raise _invalid(f"QualityFilter takes {', '.join(QUALITY)}, not {level!r}")
    return Quality.of(level)


def _page(params: dict[str, Any], pattern: re.Pattern[str]) -> tuple[str | None, int]:
    limit = number(params, "MaxResults", 0, MAX_PAGE, integer=True)
    token = params.get("NextToken")
    if token is not None and (not isinstance(token, str) or not pattern.fullmatch(token)):
        raise RekognitionError(
            "InvalidPaginationTokenException", "NextToken is not one this server gave out"
        )
    return token, PAGE if limit is None else int(limit)


def _box(box: tuple[float, float, float, float]) -> dict[str, float]:
    left, top, width, height = box
    return {"Width": width, "Height": height, "Left": left, "Top": top}


def _face(face: StoredFace) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "FaceId": face.face_id,
        "BoundingBox": _box(face.box),
        "ImageId": face.image_id,
        "Confidence": face.confidence,
        "IndexFacesModelVersion": FACE_MODEL_VERSION,
    }
    if face.external_image_id is not None:
        answer["ExternalImageId"] = face.external_image_id
    return answer


def create_collection(params: dict[str, Any], ctx: FaceContext) -> dict[str, Any]:
    collection_id = _matching(params, "CollectionId", _COLLECTION_ID)
    if collection_id is None:
        raise _invalid("CollectionId is required")
    if params.get("Tags"):
        raise _invalid("imagedex does not keep tags on collections; leave Tags out")
    try:
        ctx.store.create(collection_id, FACE_MODEL_VERSION)
    except CollectionExistsError:
        raise RekognitionError(
            "ResourceAlreadyExistsException", f"the collection id {collection_id!r} already exists"
        ) from None
    return {
        "StatusCode": 200,
        "CollectionArn": ctx.arn_prefix + collection_id,
        "FaceModelVersion": FACE_MODEL_VERSION,
    }


def list_collections(params: dict[str, Any], ctx: FaceContext) -> dict[str, Any]:
    after, limit = _page(params, _COLLECTION_ID)
    found = ctx.store.list_collections(after, limit + 1)
    answer: dict[str, Any] = {
        "CollectionIds": [c.id for c in found[:limit]],
        "FaceModelVersions": [c.face_model for c in found[:limit]],
    }
    if len(found) > limit and limit > 0:
        answer["NextToken"] = found[limit - 1].id
    return answer


def describe_collection(params: dict[str, Any], ctx: FaceContext) -> dict[str, Any]:
    found = _collection(params, ctx)
    return {
        "FaceCount": found.face_count,
        "FaceModelVersion": found.face_model,
        "CollectionARN": ctx.arn_prefix + found.id,
        "CreationTimestamp": found.created,
        "UserCount": 0,
    }


def delete_collection(params: dict[str, Any], ctx: FaceContext) -> dict[str, Any]:
    collection_id = _matching(params, "CollectionId", _COLLECTION_ID)
    if collection_id is None:
        raise _invalid("CollectionId is required")
    if not ctx.store.delete(collection_id):
        raise RekognitionError(
            "ResourceNotFoundException", f"the collection id {collection_id!r} does not exist"
        )
    return {"StatusCode": 200}


def _attributes(params: dict[str, Any], name: str) -> None:
    wrong = [a for a in string_list(params, name) if a not in ("DEFAULT", "ALL")]
    if wrong:
        raise _invalid(f"{name} takes DEFAULT or ALL, not {wrong}")


def index_faces(params: dict[str, Any], ctx: FaceContext) -> dict[str, Any]:
    collection = _collection(params, ctx)
    external = _matching(params, "ExternalImageId", _EXTERNAL_ID)
    wanted = number(params, "MaxFaces", 1, None, integer=True)
    max_faces = MAX_INDEXED if wanted is None else min(int(wanted), MAX_INDEXED)
    quality = _quality(params, "AUTO")
    _attributes(params, "DetectionAttributes")
    image = ctx.image()
    picture = image.decoded.image
    unindexed: list[dict[str, Any]] = []
    passing: list[DetectedFace] = []
    for face in ctx.engine.detect(picture):  # largest first
        reasons = quality.reasons(face, picture)
        if reasons:
            unindexed.append({"Reasons": reasons, "FaceDetail": face_detail(face.to_dict())})
        elif len(passing) < max_faces:
            passing.append(face)
        else:
            unindexed.append(
                {"Reasons": ["EXCEEDS_MAX_FACES"], "FaceDetail": face_detail(face.to_dict())}
            )
    if collection.face_count + len(passing) > MAX_FACES_PER_COLLECTION:
        raise RekognitionError(
            "ServiceQuotaExceededException",
            f"a collection holds at most {MAX_FACES_PER_COLLECTION} faces; "
            f"{collection.id!r} has {collection.face_count}",
        )
    descriptors = ctx.engine.describe(picture, passing) if passing else np.zeros((0, 128))
    image_id = str(uuid.uuid5(_IMAGE_IDS, hashlib.sha256(image.original).hexdigest()))
    records = []
    new = []
    for face, descriptor in zip(passing, descriptors, strict=True):
        detail = face_detail(face.to_dict())  # rounded as DetectFaces answers
        box = detail["BoundingBox"]
        stored = StoredFace(
            str(uuid.uuid4()),
            image_id,
            external,
            (box["Left"], box["Top"], box["Width"], box["Height"]),
            detail["Confidence"],
        )
        new.append(NewFace(stored, descriptor))
        records.append({"Face": _face(stored), "FaceDetail": detail})
    if new and not ctx.store.add_faces(collection.id, new):
        raise RekognitionError(
            "ResourceNotFoundException", f"the collection {collection.id!r} was deleted meanwhile"
        )
    return {
        "FaceRecords": records,
        "FaceModelVersion": FACE_MODEL_VERSION,
        "UnindexedFaces": unindexed,
    }


def list_faces(params: dict[str, Any], ctx: FaceContext) -> dict[str, Any]:
    collection = _collection(params, ctx)
    if params.get("UserId") is not None:
        raise _invalid("imagedex does not keep users in collections; leave UserId out")
    only = _face_ids(params, required=False)
    after, limit = _page(params, _FACE_ID)
    found = ctx.store.faces(collection.id, after, limit + 1, only)
    answer: dict[str, Any] = {
        "Faces": [_face(f) for f in found[:limit]],
        "FaceModelVersion": FACE_MODEL_VERSION,
    }
    if len(found) > limit and limit > 0:
        answer["NextToken"] = found[limit - 1].face_id
    return answer


def _face_ids(params: dict[str, Any], required: bool) -> list[str]:
    if params.get("FaceIds") is None and not required:
        return []
    ids = string_list(params, "FaceIds")
    if not 1 <= len(ids) <= MAX_PAGE:
        raise _invalid(f"FaceIds must hold 1 to {MAX_PAGE} face ids")
    wrong = [i for i in ids if not _FACE_ID.fullmatch(i)]
    if wrong:
        raise _invalid(f"FaceIds must be face ids (UUIDs in lower case), not {wrong[:3]}")
    return ids


def delete_faces(params: dict[str, Any], ctx: FaceContext) -> dict[str, Any]:
    collection = _collection(params, ctx)
    ids = _face_ids(params, required=True)
    deleted = ctx.store.delete_faces(collection.id, ids)
    return {
        "DeletedFaces": [i for i in dict.fromkeys(ids) if i in deleted],
        "UnsuccessfulFaceDeletions": [
            {"FaceId": i, "Reasons": ["FACE_NOT_FOUND"]}
            for i in dict.fromkeys(ids)
            if i not in deleted
        ],
    }


def _matches(
    ctx: FaceContext,
    collection: Collection,
    params: dict[str, Any],
    descriptor: np.ndarray,
    skip: str | None = None,
) -> list[dict[str, Any]]:
    wanted = number(params, "MaxFaces", 1, MAX_PAGE, integer=True)
    threshold = number(params, "FaceMatchThreshold", 0, 100)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    found = ctx.store.search(
        collection.id,
        descriptor,
        distance_for(threshold) + 1e-9,
        SEARCH_MAX_FACES if wanted is None else int(wanted),
        skip,
    )
    answer = []
    for distance, face in found:
        score = min(100.0, max(0.0, float(similarity(distance))))
        if score >= threshold:
            answer.append({"Similarity": score, "Face": _face(face)})
    return answer


def search_faces_by_image(params: dict[str, Any], ctx: FaceContext) -> dict[str, Any]:
    collection = _collection(params, ctx)
    quality = _quality(params, "NONE")
    number(params, "MaxFaces", 1, MAX_PAGE, integer=True)  # checked before the image is read
    number(params, "FaceMatchThreshold", 0, 100)
    picture = ctx.image().decoded.image
    faces = [f for f in ctx.engine.detect(picture) if not quality.reasons(f, picture)]
    if not faces:
        raise _invalid("there are no faces in the image (at the QualityFilter asked for)")
    largest = faces[0]
    descriptor = ctx.engine.describe(picture, [largest])[0]
    detail = face_detail(largest.to_dict())
    return {
        "SearchedFaceBoundingBox": detail["BoundingBox"],
        "SearchedFaceConfidence": detail["Confidence"],
        "FaceMatches": _matches(ctx, collection, params, descriptor),
        "FaceModelVersion": FACE_MODEL_VERSION,
    }


def search_faces(params: dict[str, Any], ctx: FaceContext) -> dict[str, Any]:
    collection = _collection(params, ctx)
    face_id = _matching(params, "FaceId", _FACE_ID)
    if face_id is None:
        raise _invalid("FaceId is required")
    descriptor = ctx.store.descriptor(collection.id, face_id)
    if descriptor is None:
        raise RekognitionError(
            "InvalidParameterException",
            f"no face {face_id} in the collection {collection.id!r}",
        )
    return {
        "SearchedFaceId": face_id,
        "FaceMatches": _matches(ctx, collection, params, descriptor, skip=face_id),
        "FaceModelVersion": FACE_MODEL_VERSION,
    }


CollectionOperation = Callable[[dict[str, Any], FaceContext], dict[str, Any]]

COLLECTION_OPERATIONS: dict[str, CollectionOperation] = {
    "CreateCollection": create_collection,
    "ListCollections": list_collections,
    "DescribeCollection": describe_collection,
    "DeleteCollection": delete_collection,
    "IndexFaces": index_faces,
    "ListFaces": list_faces,
    "DeleteFaces": delete_faces,
    "SearchFacesByImage": search_faces_by_image,
    "SearchFaces": search_faces,
}
