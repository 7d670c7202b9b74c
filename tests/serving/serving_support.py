"""Shared pieces of the serving tests: limits of the test app, synthetic photos, PNG codecs."""

from __future__ import annotations

import io

import numpy as np

API_KEY = "test-key-123"
# Limits of the ``liwi`` test app: small, so the tests can cross them cheaply.
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 1_000_000


def photo(width: int = 96, height: int = 80, seed: int = 0) -> np.ndarray:
    """A small synthetic 'photo': textured ground, a coloured disc and its soft shadow."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ground = np.stack(
        [0.55 + 0.2 * yy / height, 0.6 + 0.1 * xx / width, 0.5 + 0.0 * xx], axis=2
    ) + rng.normal(0, 0.02, (height, width, 3))
    cx, cy, r = width * 0.45, height * 0.45, min(width, height) * 0.22
    shadow = np.exp(-(((xx - cx - r * 0.6) / (1.2 * r)) ** 2 + ((yy - cy - r) / (0.5 * r)) ** 2))
    img = ground * (1 - 0.5 * shadow)[..., None]
    disc = np.clip(r - np.hypot(xx - cx, yy - cy) + 0.5, 0, 1)[..., None]
    img = disc * np.array([0.85, 0.2, 0.15]) + (1 - disc) * img
    return np.clip(img, 0, 1).astype(np.float32)


def png_bytes(arr: np.ndarray) -> bytes:
    from liwi.imageio import encode_png

    return encode_png(arr)


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.float32) / 255.0
