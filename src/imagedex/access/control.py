"""One deployment's access control: the policy, the user/key store, the link signer and the
rate limits, built once per API app."""

from __future__ import annotations

import time
from collections.abc import Callable

from imagedex.access.policy import auth_required, load_secret
from imagedex.access.ratelimit import RateLimiter
from imagedex.access.signing import LinkSigner
from imagedex.access.store import AccessStore
from imagedex.config import Settings


class AccessControl:
    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.required = auth_required(settings)
        self.store = AccessStore.open(settings, clock)
        self.signer = LinkSigner(load_secret(settings), clock)
        self.login_limiter = RateLimiter(settings.login_attempts_per_minute, 60.0, monotonic)
        self.upload_limiter = RateLimiter(settings.uploads_per_minute, 60.0, monotonic)

    def close(self) -> None:
        self.store.close()
