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


def write_toy_table(out: str, n: int, size: int = 128, seed: int = 0) -> str:
    """Write ``n`` toy stacks (1–2 objects) as a layer table with 80/10/10 splits."""
    from liwi.schema import sample_id_for, stack_to_row
    from liwi.table import write_table

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        stack = toy_stack(rng, size, int(rng.integers(1, 3)))
        split = "train" if i % 10 < 8 else ("val" if i % 10 == 8 else "test")
        rows.append(
            stack_to_row(
                stack,
                sample_id=sample_id_for(f"toy-{seed}-{i}".encode()),
                source_uri=f"toy://{seed}/{i}",
                split=split,
            )
        )
    write_table(rows, out, name="toy")
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="write a toy layer table")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(write_toy_table(a.out, a.n, a.size, a.seed))
