"""Object colour: procedural textures (noise, gradients, stripes, grain) and photo patches.

Every function returns float32 H×W×3 in [0, 1] and draws its randomness from ``rng`` only.
"""

from __future__ import annotations

import numpy as np


def fractal_noise(rng: np.random.Generator, h: int, w: int, octaves: int = 4) -> np.ndarray:
    """Smooth value noise in [0, 1] (H×W): octaves of upsampled random grids."""
    import cv2

    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    cells = int(rng.integers(2, 5))  # coarsest grid: 2–4 cells across
    for _ in range(octaves):
        grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5  # persistence: each octave half as strong
        cells *= 2
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """A plausible object colour: mostly muted, sometimes saturated paint (RGB, float32)."""
    import colorsys

    hue = float(rng.random())
    sat = float(rng.choice([rng.uniform(0.05, 0.35), rng.uniform(0.35, 0.85)], p=[0.55, 0.45]))
    val = float(rng.uniform(0.25, 0.9))
    return np.array(colorsys.hsv_to_rgb(hue, sat, val), np.float32)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a * (1.0 - t[..., None]) + b * t[..., None]


def noise_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Two related colours mixed by fractal noise (stone, fabric, painted surfaces)."""
    c1 = random_colour(rng)
    c2 = np.clip(c1 * rng.uniform(0.6, 1.4, 3), 0, 1).astype(np.float32)
    return _mix(c1, c2, fractal_noise(rng, h, w))


def gradient_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A linear two-colour gradient in a random direction with a little grain."""
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (np.cos(angle) * xx / max(w, 1) + np.sin(angle) * yy / max(h, 1)) * 0.5 + 0.5
    t = np.clip(t + 0.05 * (fractal_noise(rng, h, w) - 0.5), 0, 1)
    return _mix(random_colour(rng), random_colour(rng), t)


def stripe_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Soft stripes or a checker pattern (textiles, packaging)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(6, 24)  # pixels per stripe
    angle = rng.uniform(0, np.pi)
    u = (np.cos(angle) * xx + np.sin(angle) * yy) / period
    if rng.random() < 0.3:
        v = (-np.sin(angle) * xx + np.cos(angle) * yy) / period
        t = 0.5 + 0.5 * np.sign(np.sin(np.pi * u) * np.sin(np.pi * v))
    else:
        t = 0.5 + 0.5 * np.tanh(3.0 * np.sin(2 * np.pi * u))
    return _mix(random_colour(rng), random_colour(rng), t.astype(np.float32))


def wood_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Grain: rings of a noise-distorted coordinate (wood, marble)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    distortion = fractal_noise(rng, h, w) * rng.uniform(3, 9)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (xx / rng.uniform(8, 30) + distortion))
    base = random_colour(rng)
    dark = base * rng.uniform(0.45, 0.75)
    return _mix(dark.astype(np.float32), base, rings.astype(np.float32))


PROCEDURAL = {
    "noise": noise_texture,
    "gradient": gradient_texture,
    "stripes": stripe_texture,
    "wood": wood_texture,
}


def procedural_texture(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, str]:
    """One of the procedural textures, chosen at random; returns (texture, name)."""
    names = list(PROCEDURAL)
    name = names[int(rng.choice(len(names), p=[0.45, 0.2, 0.15, 0.2]))]
    return PROCEDURAL[name](rng, h, w).astype(np.float32), name


def photo_patch(
    rng: np.random.Generator, photo: np.ndarray, h: int, w: int
) -> tuple[np.ndarray, list[int]]:
    """A random h×w region of ``photo`` (rescaled if the photo is smaller)."""
    import cv2

    ph, pw = photo.shape[:2]
    scale = max(h / ph, w / pw, rng.uniform(0.5, 1.0))  # ≥ 1 region fits; < 1 zooms out
    if scale != 1.0:
        photo = cv2.resize(photo, (max(w, int(pw * scale)), max(h, int(ph * scale))))
        ph, pw = photo.shape[:2]
    y0 = int(rng.integers(0, ph - h + 1))
    x0 = int(rng.integers(0, pw - w + 1))
    return np.ascontiguousarray(photo[y0 : y0 + h, x0 : x0 + w]), [x0, y0, w, h]
