"""`/api/custom` and `/api/images/{id}/tags` on the real app (127.0.0.1): teach, background
re-labelling with progress, corrections, provenance, and bad requests."""

from __future__ import annotations

import time

import httpx

from imagedex.services import Services
from live_app import live_app
from test_custom_labels import ingest, labels_of, upload


def test_teach_and_correct_through_the_api(services: Services) -> None:
    reds = [upload(services, f"r{n}.png", "red", 5 * n) for n in range(5)]
    blue = upload(services, "b0.png", "blue", 0)
    ingest(services)
    with live_app(services) as url, httpx.Client(base_url=url, timeout=30) as http:
        taught = http.post("/api/custom/Scarlet/examples", json={"examples": reds[:3]})
        assert taught.status_code == 202, taught.text
        assert taught.json()["examples"] == 3
        deadline = time.monotonic() + 30
        while http.get("/api/custom/Scarlet").json()["applying"]["state"] != "done":
            assert time.monotonic() < deadline, "re-labelling did not finish"
            time.sleep(0.1)
        assert http.get("/api/custom/Scarlet").json()["applying"]["total"] == 6
        found = http.get("/api/search", params={"label": "scarlet", "limit": 50}).json()
        assert sorted(h["id"] for h in found["hits"]) == sorted(reds)
        assert [x["name"] for x in http.get("/api/custom").json()["labels"]] == ["Scarlet"]

        fixed = http.post(f"/api/images/{blue}/tags", json={"label": "Sky", "action": "add"})
        assert fixed.status_code == 200 and "Sky" in fixed.json()["labels"]
        http.post(f"/api/images/{blue}/tags", json={"label": "blue", "action": "remove"})
        tags = http.get(f"/api/images/{blue}/tags").json()
        assert {"label": "Sky", "confidence": 100.0, "source": "person"} in tags["labels"]
        assert tags["removed"] == ["blue"]
        assert "blue" not in labels_of(services, blue)
        sources = {
            t["label"]: t["source"]
            for t in http.get(f"/api/images/{reds[4]}/tags").json()["labels"]
        }
        assert sources == {"red": "model", "Scarlet": "custom"}

        assert http.post("/api/custom/Dog/examples", json={"examples": reds[:3]}).status_code == 422
        one = http.post("/api/custom/Widget/examples", json={"examples": reds[:1]})
        assert one.status_code == 422 and "at least 3" in one.json()["detail"]
        # the API never reads a server file as an example
        files = http.post(
            "/api/custom/Widget/examples",
            json={"examples": ["/etc/hostname", "/etc/hosts", "/etc/passwd"]},
        )
        assert files.status_code == 404
        assert http.get("/api/custom/Nothing").status_code == 404
        assert (
            http.post("/api/images/nope/tags", json={"label": "x", "action": "add"}).status_code
            == 404
        )
        bad = http.post(f"/api/images/{blue}/tags", json={"label": "x", "action": "maybe"})
        assert bad.status_code == 422

        assert http.delete("/api/custom/Scarlet").status_code == 202
        deadline = time.monotonic() + 30
        while any("Scarlet" in labels_of(services, r) for r in reds):
            assert time.monotonic() < deadline, "the forgotten label stayed on images"
            time.sleep(0.1)
        assert http.get("/api/custom").json()["labels"] == []
