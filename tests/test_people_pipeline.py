"""Face recognition wired into the worker (issue 15): the real worker, the real BlazeFace
`faces` analyzer and the real face descriptor on face_recognition 1.3.0's test photos (Obama x3,
Biden; fetched once by bench/labelled_photos.py into its cache) and altered copies of them."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance, ImageOps

from imagedex.config import Settings
from imagedex.documents import ImageDocument, SearchQuery
from imagedex.ingest import reprocess
from imagedex.ingest.delete import delete_document
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.people.recognise import NAME, VERSION
from imagedex.people.store import FILE_NAME, PeopleStore
from imagedex.recognition import face_embedding
from imagedex.services import Services

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from labelled_photos import photos

OBAMA = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_mirrored.jpg")
BIDEN = ("biden.jpg", "biden_brighter.jpg")


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    found = {
        photo_id.split("/")[1]: image
        for photo_id, image, _ in photos(sources=["face_recognition"])
        if photo_id.split("/")[1] in ("obama", "obama2", "obama3", "biden")
    }
    return {
        "obama.jpg": jpeg(found["obama"]),
        "obama2.jpg": jpeg(found["obama2"]),
        "obama3.jpg": jpeg(found["obama3"]),
        "obama_mirrored.jpg": jpeg(ImageOps.mirror(found["obama"])),
        "biden.jpg": jpeg(found["biden"]),
        "biden_brighter.jpg": jpeg(ImageEnhance.Brightness(found["biden"]).enhance(1.3)),
    }


def deployment(data: Path, **settings: object) -> Services:
    values: dict = {"recognizers": "faces", "semantic": False, "face_recognition": True}
    values.update(settings)
    return Services.from_settings(Settings(data_dir=data, **values))


def ingest(services: Services, files: dict[str, bytes]) -> dict[str, str]:
    ids = {name: upload_bytes(services, name, data).doc_id for name, data in files.items()}
    Worker(services).run(once=True)
    return ids


def doc(services: Services, doc_id: str) -> ImageDocument:
    found = services.index.get(doc_id)
    assert found is not None
    return found


def person_ids(document: ImageDocument) -> list[object]:
    return [face.get("person_id") for face in document.faces]


def test_the_worker_groups_faces_into_people_and_deleting_removes_them(
    tmp_path: Path, files: dict[str, bytes]
) -> None:
    services = deployment(tmp_path)
    ids = ingest(services, files)
    store = PeopleStore.in_data_dir(tmp_path)
    (obama,) = store.people()  # Biden's two faces wait for a third (min_faces 3)
    assert obama.faces == 4
    assert store.counts() == (6, 2, 1)
    for name in OBAMA:
        document = doc(services, ids[name])
        assert person_ids(document) == [obama.id]
        assert document.analyzed_with == {"faces": "3", NAME: VERSION}
        assert "embedding" not in json.dumps(document.faces)
    for name in BIDEN:
        assert person_ids(doc(services, ids[name])) == [None]
    found = services.index.search(SearchQuery(people=(str(obama.id),), limit=10))
    assert sorted(d.id for d in found.documents) == sorted(ids[n] for n in OBAMA)

    delete_document(services, doc(services, ids["obama3.jpg"]))
    Worker(services).run(once=True)  # the "removed" event
    assert store.get(obama.id) is not None and store.get(obama.id).faces == 3  # type: ignore[union-attr]
    assert store.faces_of_document(ids["obama3.jpg"]) == []
    store.close()
    services.close()


def test_switched_off_nothing_is_computed_or_stored(
    tmp_path: Path, files: dict[str, bytes]
) -> None:
    services = deployment(tmp_path, face_recognition=False)
    ids = ingest(services, files)
    assert not (tmp_path / FILE_NAME).exists()
    for doc_id in ids.values():
        document = doc(services, doc_id)
        assert document.faces and "landmarks" in document.faces[0]  # faces are still found
        assert person_ids(document) == [None]
        assert document.analyzed_with == {"faces": "3"}
    assert reprocess.enqueue(services, reprocess.Selection()) == 0  # nothing outdated
    services.close()


def test_reprocess_builds_people_for_an_existing_collection(
    tmp_path: Path, files: dict[str, bytes]
) -> None:
    before = deployment(tmp_path, face_recognition=False)
    ids = ingest(before, files)
    before.close()

    services = deployment(tmp_path)  # switched on
    assert reprocess.enqueue(services, reprocess.Selection()) == len(files)
    Worker(services).run(once=True)
    store = PeopleStore.in_data_dir(tmp_path)
    (obama,) = store.people()
    assert obama.faces == 4
    assert person_ids(doc(services, ids["obama2.jpg"])) == [obama.id]
    assert reprocess.enqueue(services, reprocess.Selection()) == 0  # up to date now

    # analysed again with recognition off: the image's stored faces go, nothing new is made
    off = deployment(tmp_path, face_recognition=False)
    assert reprocess.enqueue(off, reprocess.Selection(force=True)) == len(files)
    Worker(off).run(once=True)
    assert store.counts() == (0, 0, 0)
    assert person_ids(doc(off, ids["obama.jpg"])) == [None]
    store.close()
    services.close()
    off.close()


def test_a_failing_face_model_keeps_the_other_results(
    tmp_path: Path, files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    monkeypatch.setattr(face_embedding, "packaged_model", lambda _name: broken)
    services = deployment(tmp_path / "data", recognizers="faces,imagenet")
    ids = ingest(services, {"obama.jpg": files["obama.jpg"]})
    document = doc(services, ids["obama.jpg"])
    assert document.faces and document.labels  # faces and ImageNet labels are indexed
    assert NAME in document.errors and "face descriptor" in document.errors[NAME]
    assert NAME not in document.analyzed_with and "faces" in document.analyzed_with
    assert PeopleStore.in_data_dir(tmp_path / "data").counts() == (0, 0, 0)
    # reprocess retries it once the model works again
    assert reprocess.enqueue(services, reprocess.Selection()) == 1
    services.close()
