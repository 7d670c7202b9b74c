"""Photographic degradations of the flat image only: blur, sensor noise, JPEG.

The ground-truth layers stay clean; the model sees the degraded flat image (as in the
wild) and learns to restore. The applied parameters are returned so a row records them.
"""

from __future__ import annotations

import numpy as np

from liwi.imageio import encode_jpeg, encode_png

BLUR_PROB = 0.3  # share of images with slight defocus
BLUR_SIGMA = (0.3, 1.1)  # Gaussian sigma in pixels
NOISE_PROB = 0.6  # share of images with sensor noise
NOISE_SIGMA = (0.003, 0.02)  # noise std at mid-grey, in [0, 1] units
JPEG_PROB = 0.75  # share saved as JPEG (the rest as lossless PNG)
JPEG_QUALITY = (55, 95)  # inclusive range


def degrade(rng: np.random.Generator, clean: np.ndarray) -> tuple[bytes, str, dict]:
    """Degrade ``clean`` (H×W×3 float) and encode it; returns (bytes, extension, params)."""
    import cv2

    img = clean.astype(np.float32, copy=True)
    blur = float(rng.uniform(*BLUR_SIGMA)) if rng.random() < BLUR_PROB else 0.0
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    noise = float(rng.uniform(*NOISE_SIGMA)) if rng.random() < NOISE_PROB else 0.0
    if noise > 0:
        # Shot + read noise: variance grows with the signal.
        std = noise * np.sqrt(0.25 + 1.5 * img)
        img = img + std * rng.standard_normal(img.shape, dtype=np.float32)
    img = np.clip(img, 0.0, 1.0)
    quality = (
        int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)) if rng.random() < JPEG_PROB else 0
    )
    if quality:
        data, ext = encode_jpeg(img, quality=quality), "jpg"
    else:
        data, ext = encode_png(img), "png"
    return data, ext, {"blur_sigma": blur, "noise_sigma": noise, "jpeg_quality": float(quality)}
