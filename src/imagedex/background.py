"""Background loops `imagedex up` runs beside the API and the worker (scheduler, deliveries)."""

from __future__ import annotations

import threading

from imagedex.services import Services


def start_background(services: Services, stop: threading.Event) -> list[threading.Thread]:
    """Start the background loops the settings enable; they end when `stop` is set."""
    return []
