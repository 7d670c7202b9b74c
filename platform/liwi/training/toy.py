"""Tiny procedural layer stacks for tests and smoke training (no files, seeded).

Smooth gradient backgrounds with texture, ellipse/rectangle objects with soft edges
and flat-ish colours, each casting a blurred, offset grey shadow. The real synthetic
data comes from ``liwi synth``; this exists so tests need no generator run.
"""

from __future__ import annotations

import numpy as np

from liwi.layers import LayerStack


def _soft_shape(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    ry, rx = rng.uniform(0.12, 0.3) * h, rng.uniform(0.12, 0.3) * w
    if rng.random() < 0.5:
        d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        edge = (1.0 - d) * min(ry, rx)
    else:
        edge = np.minimum(ry - np.abs(yy - cy), rx - np.abs(xx - cx))
    return np.clip(edge / 1.5 + 0.5, 0.0, 1.0).astype(np.float32)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(a, (0, 0), sigmaX=sigma)


def toy_stack(rng: np.random.Generator, size: int = 64, n_objects: int = 1) -> LayerStack:
    """A random stack of ``n_objects`` objects with shadows on a textured background."""
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / size
    c0, c1 = rng.uniform(0.2, 0.9, 3), rng.uniform(0.2, 0.9, 3)
    t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))[..., None]
    bg = c0 + (c1 - c0) * (t - t.min()) / (np.ptp(t) + 1e-6)
    bg = np.clip(bg + rng.normal(0, 0.02, (h, w, 3)), 0, 1).astype(np.float32)
    colors, alphas, shadows = [], [], []
    for _ in range(n_objects):
        alpha = _soft_shape(h, w, rng)
        base = rng.uniform(0.0, 1.0, 3)
        color = np.clip(base + 0.15 * (yy[..., None] - 0.5), 0, 1).astype(np.float32)
        dy, dx = (rng.integers(-size // 10, size // 10 + 1) for _ in range(2))
        cast = np.roll(alpha, (int(dy) + size // 16, int(dx)), axis=(0, 1))
        strength = rng.uniform(0.3, 0.6)
        s = 1.0 - strength * _blur(cast, size / 40)
        colors.append(color)
        alphas.append(alpha)
        shadows.append(np.clip(s, 0, 1).astype(np.float32))
    return LayerStack.from_arrays(bg, colors, alphas, shadows)
