"""Headers on every answer: `X-Content-Type-Options: nosniff` (a browser never guesses a type
other than the one sent), and on stored files a policy that makes them inert.

Uploaded bytes are checked to be an image before they are stored, but a file that is also valid
HTML or SVG script in disguise must not run as a page of this origin if someone opens its
content link: `sandbox` gives it an opaque origin (no cookies, no API), `default-src 'none'`
lets it load nothing. Images still display (`style-src 'unsafe-inline'` keeps the browser's own
image viewer styled).
"""

from __future__ import annotations

import re
from typing import Any

STORED_FILE = re.compile(r"^/api/images/[^/]+/(content|thumbnail)$")
STORED_FILE_POLICY = b"default-src 'none'; style-src 'unsafe-inline'; sandbox"


class SecurityHeaders:
    """ASGI middleware adding the headers above unless the route set them itself."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(b"x-content-type-options", b"nosniff")]
        if STORED_FILE.match(scope["path"]):
            extra.append((b"content-security-policy", STORED_FILE_POLICY))

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
