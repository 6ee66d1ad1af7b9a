"""Perceptual hashes for near-duplicate detection (difference hash, 64 bits)."""

from __future__ import annotations

import numpy as np
from PIL import Image

BANDS = 4  # 64 bits in 4 bands of 16: hashes within distance 3 always share a band
NEAR_DUPLICATE_DISTANCE = 3  # re-encoded or resized copies; 4 bands guarantee recall here


def dhash(image: Image.Image) -> str:
    """16 hex digits; visually similar images (resized, recompressed) give close hashes."""
    small = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def bands(phash: str) -> list[str]:
    """Band keys like `0:a1b2` used to find candidate near-duplicates by exact lookup."""
    width = len(phash) // BANDS
    return [f"{i}:{phash[i * width : (i + 1) * width]}" for i in range(BANDS)]
