"""Object silhouettes (alpha in [0, 1]) with soft, thin or hairy boundaries.

Shapes are drawn in a local h×w box whose bottom row is where the object touches the
ground. Polygons are rasterised at ``SUPERSAMPLE``× and area-averaged down, so edges
carry true fractional coverage; a small Gaussian then softens them (defocus).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from liwi.paths import SHAPES_DIR

SUPERSAMPLE = 4  # rasterisation factor for anti-aliased coverage
STRAND_LEVELS = 4  # distinct hair-strand opacities (one draw call each)


def _fill(polys: list[np.ndarray], h: int, w: int) -> np.ndarray:
    """Anti-aliased coverage of filled polygons given in local pixel coordinates."""
    import cv2

    big = np.zeros((h * SUPERSAMPLE, w * SUPERSAMPLE), np.uint8)
    pts = [np.round(p * SUPERSAMPLE).astype(np.int32) for p in polys]
    cv2.fillPoly(big, pts, 255)
    small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def blob(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random blob (stones, bags, animals' bodies), flattened at the base."""
    theta = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 6):  # low-frequency wobble of the outline
        r += rng.uniform(0, 0.18 / k * 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r /= r.max()
    x = w / 2 + (w / 2 - 1) * r * np.cos(theta)
    y = h / 2 + (h / 2 - 1) * r * np.sin(theta)
    y = np.minimum(y, h - 1 - rng.uniform(0, 0.04) * h)  # a flat-ish footprint
    y = y + (h - 1 - y.max())
    return _fill([np.stack([x, y], 1)], h, w)


def vessel(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A body of revolution seen from the side (vase, bottle, lamp, person-like column)."""
    n = int(rng.integers(3, 6))
    ys = np.linspace(0, 1, n)
    widths = rng.uniform(0.25, 1.0, n)
    widths[-1] = max(widths[-1], 0.5)  # stable base
    yy = np.linspace(0, 1, 64)
    profile = np.interp(yy, ys, widths)
    profile = np.convolve(np.pad(profile, 4, mode="edge"), np.ones(9) / 9, mode="valid")
    half = profile / profile.max() * (w / 2 - 1)
    left = np.stack([w / 2 - half, yy * (h - 1)], 1)
    right = np.stack([w / 2 + half, yy * (h - 1)], 1)[::-1]
    return _fill([np.concatenate([left, right])], h, w)


def rounded_box(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A superellipse / rounded rectangle (boxes, appliances, books)."""
    p = rng.uniform(2.5, 8.0)  # superellipse exponent: 2 = ellipse, large = box
    theta = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    c, s = np.cos(theta), np.sin(theta)
    x = w / 2 + (w / 2 - 1) * np.sign(c) * np.abs(c) ** (2 / p)
    y = h / 2 + (h / 2 - 1) * np.sign(s) * np.abs(s) ** (2 / p)
    return _fill([np.stack([x, y], 1)], h, w)


def rock(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Convex hull of random points (rocks, crumpled things), resting on its lowest side."""
    import cv2

    pts = rng.random((12, 2)) * [w - 2, h - 2] + 1
    pts[:2, 1] = h - 1  # two points on the ground: a resting face
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    return _fill([hull], h, w)


def figure(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A stylised standing figure/plant: a body with a head and two thin legs."""
    import cv2

    big = np.zeros((h * SUPERSAMPLE, w * SUPERSAMPLE), np.uint8)
    s = SUPERSAMPLE
    leg_h = rng.uniform(0.15, 0.35) * h
    body_top = rng.uniform(0.2, 0.35) * h
    cx = w / 2
    body_w = rng.uniform(0.3, 0.48) * w
    centre = (int(cx * s), int((body_top + (h - leg_h)) / 2 * s))
    axes = (int(body_w * s), int(((h - leg_h) - body_top) / 2 * s))
    cv2.ellipse(big, centre, axes, 0, 0, 360, 255, -1)
    head_r = rng.uniform(0.1, 0.16) * h
    cv2.circle(
        big, (int(cx * s), int(max(head_r, body_top - head_r * 0.6) * s)), int(head_r * s), 255, -1
    )
    thick = max(1, int(rng.uniform(0.02, 0.06) * w * s))
    for dx in (-1, 1):
        x0 = cx + dx * body_w * 0.45
        cv2.line(
            big,
            (int(x0 * s), int((h - leg_h - 2) * s)),
            (int((x0 + dx * rng.uniform(0, 0.1) * w) * s), int((h - 1) * s)),
            255,
            thick,
        )
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def default_silhouette_dir() -> Path:
    """``data/shapes`` of the source checkout."""
    return SHAPES_DIR


@lru_cache(maxsize=4)
def load_silhouettes(folder: str | None = None) -> tuple[np.ndarray, ...]:
    """Real object silhouettes (white = object) from ``folder``, sorted by file name."""
    from liwi.imageio import decode_grey

    path = Path(folder) if folder else default_silhouette_dir()
    files = sorted(path.glob("*.png")) if path.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no silhouettes (*.png) in {path}")
    return tuple(decode_grey(f.read_bytes()) for f in files)


def silhouette(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A real silhouette (animal …), mirrored at random, fitted into the box with its
    own aspect ratio, standing on the bottom row."""
    import cv2

    masks = load_silhouettes()
    mask = masks[int(rng.integers(len(masks)))]
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    mh, mw = mask.shape
    scale = min(h / mh, w / mw)
    sh, sw = max(2, int(mh * scale)), max(2, int(mw * scale))
    small = cv2.resize(np.ascontiguousarray(mask), (sw, sh), interpolation=cv2.INTER_AREA)
    out = np.zeros((h, w), np.float32)
    x0 = (w - sw) // 2
    out[h - sh :, x0 : x0 + sw] = small
    return out


SHAPES = {
    "blob": blob,
    "vessel": vessel,
    "box": rounded_box,
    "rock": rock,
    "figure": figure,
    "silhouette": silhouette,
}


def soften(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-soften an edge (defocus, motion, fine fuzz); sigma in pixels."""
    import cv2

    if sigma <= 0.05:
        return alpha
    return cv2.GaussianBlur(alpha, (0, 0), sigma)


def add_strands(
    rng: np.random.Generator,
    alpha: np.ndarray,
    count: int,
    length: float,
    opacity: tuple[float, float] = (0.35, 0.9),
) -> np.ndarray:
    """Hair/fur: thin curved strands growing outward from the boundary, partial alpha.

    Strands start on the silhouette edge, leave along the outward normal with a random
    bend, and are drawn 1 px wide anti-aliased, so their alpha is fractional coverage
    times a per-strand opacity.
    """
    import cv2

    h, w = alpha.shape
    edge = (alpha > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(edge, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return alpha
    boundary = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float32)
    # Outward normal from the gradient of a blurred mask.
    blurred = cv2.GaussianBlur(edge.astype(np.float32), (0, 0), 3.0)
    gy, gx = np.gradient(blurred)
    s = SUPERSAMPLE
    picks = boundary[rng.integers(0, len(boundary), count)]
    picks = picks[picks[:, 1] < h - 2]  # no strands into the ground
    k = len(picks)
    xi, yi = picks[:, 0].astype(np.int64), picks[:, 1].astype(np.int64)
    n = -np.stack([gx[yi, xi], gy[yi, xi]], axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-6
    n += rng.normal(0, 0.35, (k, 2))  # scatter around the normal
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-6
    bend = np.stack([-n[:, 1], n[:, 0]], axis=1) * rng.normal(0, 0.4, (k, 1))
    ln = length * rng.uniform(0.4, 1.0, (k, 1))
    t = np.linspace(0, 1, 8)[None, :, None]
    start = picks - n * ln * 0.3  # root inside the body
    pts = start[:, None] + t * (n * ln)[:, None] + t**2 * (bend * ln)[:, None]
    pts = np.round(pts * s).astype(np.int32)  # k × 8 × 2, supersampled pixels
    level = rng.integers(0, STRAND_LEVELS, k)  # per-strand opacity, quantised
    values = np.linspace(*opacity, STRAND_LEVELS)
    canvas = np.zeros((h * s, w * s), np.float32)
    for i, val in enumerate(values):  # one draw call per opacity level
        layer = np.zeros_like(canvas)
        cv2.polylines(layer, list(pts[level == i]), False, float(val), max(1, s // 2), cv2.LINE_AA)
        canvas = np.maximum(canvas, layer)
    strands = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    return np.maximum(alpha, np.clip(strands, 0, 1))
