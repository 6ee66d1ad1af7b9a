"""HMAC-signed links that expire: `/api/images/<id>/content?expires=...&signature=...`.

The signature covers the path and the expiry time, so a link opens one image until it expires
and cannot be edited into a link to another image or a later expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import quote

from imagedex.config import Settings

_PURPOSE = b"imagedex signed links v1"  # keeps link signatures apart from other uses of the key


class LinkSigner:
    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()
        self._clock = clock

    def _signature(self, path: str, expires: int) -> str:
        message = f"{path}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign_path(self, path: str, ttl: float) -> str:
        """`path?expires=<unix time>&signature=<hex>`, valid for `ttl` seconds from now."""
        if "?" in path or "#" in path:
            raise ValueError("sign a bare path, without a query string or fragment")
        if ttl <= 0:
            raise ValueError("a signed link needs a positive lifetime")
        expires = int(self._clock() + ttl)
        return f"{path}?expires={expires}&signature={self._signature(path, expires)}"

    def verify(self, path: str, expires: str | int, signature: str) -> bool:
        """True while the link is unexpired and its signature matches the path and expiry."""
        try:
            moment = int(expires)
        except (TypeError, ValueError):
            return False
        expected = self._signature(path, moment)
        valid = hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
        return valid and self._clock() < moment


def image_path(doc_id: str, kind: str = "content") -> str:
    if kind not in ("content", "thumbnail"):
        raise ValueError("a signed image link is to its 'content' or its 'thumbnail'")
    return f"/api/images/{quote(doc_id, safe='')}/{kind}"


def base_url(settings: Settings) -> str:
    """How people reach the app: `public_url`, else http://host:port."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def signed_image_url(
    settings: Settings, doc_id: str, kind: str = "content", ttl: float | None = None
) -> str:
    """An absolute link to an image (or its thumbnail) that works without logging in until it
    expires: what e-mails, Slack messages and reports embed."""
    from imagedex.access.policy import load_secret

    signer = LinkSigner(load_secret(settings))
    return base_url(settings) + signer.sign_path(image_path(doc_id, kind), ttl or settings.link_ttl)
