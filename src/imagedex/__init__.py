"""imagedex: self-hosted image recognition and search."""

__version__ = "0.1.0"
