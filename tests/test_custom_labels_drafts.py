"""`POST /api/images/{id}/teach` on the real app (127.0.0.1): a new label collects examples one
image at a time (listed as collecting, by the API and the CLI) and is taught at 3; bad requests
get one message and change nothing; forgetting a collecting label drops its examples."""

from __future__ import annotations

import time

import httpx

from cli_helpers import cli_json, imagedex_env
from imagedex.services import Services
from live_app import live_app
from test_custom_labels import ingest, labels_of, upload


def test_teaching_one_image_at_a_time(services: Services) -> None:
    reds = [upload(services, f"r{n}.png", "red", 5 * n) for n in range(5)]
    blue = upload(services, "b0.png", "blue", 0)
    ingest(services)
    env = imagedex_env(services.settings.data_dir)
    with live_app(services) as url, httpx.Client(base_url=url, timeout=30) as http:

        def teach(doc: str, label: str) -> httpx.Response:
            return http.post(f"/api/images/{doc}/teach", json={"label": label})

        first = teach(reds[0], "Scarlet")
        assert first.status_code == 200, first.text
        assert first.json() == {
            "name": "Scarlet", "state": "collecting", "new": True, "examples": 1, "needed": 3,
        }  # fmt: skip
        assert teach(reds[0], "scarlet").json()["examples"] == 1  # the same image counts once
        assert http.get("/api/custom").json() == {
            "labels": [],
            "collecting": [{"name": "Scarlet", "examples": 1, "needed": 3}],
        }
        assert cli_json(env, "custom", "list")["collecting"] == [
            {"name": "Scarlet", "examples": 1, "needed": 3}
        ]
        assert "Scarlet" not in labels_of(services, reds[0])  # collecting labels nothing

        refused = teach(reds[1], "Dog")
        assert refused.status_code == 422 and "analyzers already give" in refused.json()["detail"]
        http.post(f"/api/images/{blue}/tags", json={"label": "Scarlet", "action": "remove"})
        contradicts = teach(blue, "Scarlet")
        assert contradicts.status_code == 422 and "contradicts" in contradicts.json()["detail"]
        assert teach("nope", "Scarlet").status_code == 404
        assert http.get("/api/custom").json()["collecting"][0]["examples"] == 1

        # forgetting a label still collecting drops its examples
        assert http.delete("/api/custom/Scarlet").json() == {"name": "Scarlet"}
        assert http.get("/api/custom").json()["collecting"] == []

        for n, state in ((0, "collecting"), (1, "collecting"), (2, "taught")):
            assert teach(reds[n], "Scarlet").json()["state"] == state
        deadline = time.monotonic() + 30
        while http.get("/api/custom/Scarlet").json()["applying"]["state"] != "done":
            assert time.monotonic() < deadline, "re-labelling did not finish"
            time.sleep(0.1)
        assert all("Scarlet" in labels_of(services, r) for r in reds)
        assert "Scarlet" not in labels_of(services, blue)
        assert http.get("/api/custom").json()["collecting"] == []
        more = teach(reds[3], "Scarlet").json()
        assert (more["state"], more["new"], more["examples"]) == ("taught", False, 4)
