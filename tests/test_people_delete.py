"""`imagedex delete` takes the image's faces out of the people store at once (issue 15), without
waiting for a worker to process the "removed" event: the real CLI on a data dir the real worker
filled with face_recognition's Obama photos and an altered copy."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import cli_json, imagedex_env
from imagedex.people.store import PeopleStore
from test_people_pipeline import deployment, files, ingest

__all__ = ["files"]  # the fixture, used by name


def test_deleting_an_image_removes_its_faces_without_a_worker(
    tmp_path: Path, files: dict[str, bytes]
) -> None:
    services = deployment(tmp_path)
    obama = {n: files[n] for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_mirrored.jpg")}
    ids = ingest(services, obama)
    services.close()
    store = PeopleStore.in_data_dir(tmp_path)
    (person,) = store.people()
    assert person.faces == 4

    env = imagedex_env(tmp_path, IMAGEDEX_RECOGNIZERS="faces", IMAGEDEX_FACE_RECOGNITION="true")
    assert cli_json(env, "delete", ids["obama3.jpg"], "--yes")["deleted"][0]["document"]
    # no worker ran: the "removed" event still waits in the queue, yet the faces are gone
    assert store.faces_of_document(ids["obama3.jpg"]) == []
    now = store.get(person.id)
    assert now is not None and now.faces == 3
    assert {f.doc for f in store.faces_of(person.id)} == {
        ids[n] for n in ("obama.jpg", "obama2.jpg", "obama_mirrored.jpg")
    }

    rest = [ids[n] for n in ("obama.jpg", "obama2.jpg", "obama_mirrored.jpg")]
    assert len(cli_json(env, "delete", *rest, "--yes")["deleted"]) == 3
    assert store.people() == [] and store.counts() == (0, 0, 0)  # nobody left without faces
    store.close()
