"""Schemathesis generates requests from the app's own OpenAPI spec: none may end in a 500."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from PIL import Image

from conftest import ColourRecognizer
from imagedex.api import create_app
from imagedex.config import Settings
from imagedex.ingest.upload import upload_bytes
from imagedex.ingest.worker import Worker
from imagedex.services import Services


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    services = Services.from_settings(
        Settings(data_dir=data_dir, semantic=False, auth="off", allowed_hosts="testserver")
    )
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 20, 20)).save(buffer, "PNG")
    upload_bytes(services, "seed/red.png", buffer.getvalue(), title="red", content_type="image/png")
    Worker(services, recognizers=[ColourRecognizer()]).run(once=True)
    app = create_app(services)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    services.close()


def test_no_server_errors(api_schema: Any) -> None:
    """Every operation, about 25 generated requests each (schemathesis' pytest plugin does not
    support this pytest version, so the operations are driven through hypothesis directly)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    answered: dict[str, set[int]] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call()
            answered.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}"
            )

        call()
    # the generated requests really reached the routes (not refused wholesale before them)
    assert answered["GET /api/search"] & {200}
    assert answered["GET /api/dashboard"] & {200}
