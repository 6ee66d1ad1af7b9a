"""The real FastAPI app of a `Services` on a free 127.0.0.1 port (uvicorn in a thread), for tests
that drive the API or the web app without the worker and its models."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from cli_helpers import free_port
from imagedex.services import Services


@contextmanager
def live_app(services: Services) -> Iterator[str]:
    """Serve `create_app(services)`; yields its base URL and stops it on exit."""
    from imagedex.api.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
