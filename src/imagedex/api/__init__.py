"""The HTTP API."""

from imagedex.api.app import create_app

__all__ = ["create_app"]
