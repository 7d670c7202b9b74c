"""Procedural scenes with known layers: the one generator tests, demos and training draw from.

A wall above a floor (low-frequency texture, fine grain, light falling off away from the
camera), ``n_objects`` soft-edged objects standing on the floor, and the soft shadow each
casts, projected by the synth shadow model (:func:`liwi.synth.shadows.cast_shadow`) from
one key light. The result is the ground-truth :class:`~liwi.layers.LayerStack`, so its
composite is a photo whose correct decomposition is known.

Unlike :mod:`liwi.synth.generator` (``liwi synth``: real photo backgrounds, varied shapes,
several lights, degradations) it needs no files and takes milliseconds. Objects are drawn
at random (seeded) or placed by hand with :class:`Placement` where a test needs fixed
positions and colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from liwi.layers import LayerStack
from liwi.synth.shadows import Light, cast_shadow
from liwi.synth.textures import fractal_noise

SHAPES = ("ellipse", "box")  # silhouettes a Placement can have
EDGE_PX = 1.5  # width of an object's soft edge ramp (px), about one pixel of defocus
DARKNESS = (0.35, 0.55)  # range of the shadow's darkening in its umbra (1 − S)
TINT = 0.08  # wall and floor are muted: a grey level plus at most this much per channel
TEXTURE = 0.3  # peak-to-peak relative brightness of the floor/wall's low-frequency texture
GRAIN = 0.01  # sigma of the background's fine grain (luminance, as on real surfaces)
FALLOFF = 0.1  # the far (top) edge is this much darker than the near (bottom) edge
SHADE = 0.3  # an object's far side from the light is this much darker (Lambert-ish)
OBJECT_TEXTURE = 0.03  # amplitude of the background texture echoed on objects
# The key light, as the ground sees it: shadow offset per pixel of object height to the
# right (sx) and towards the camera (sy), penumbra growth per pixel of height (softness).
KEY_LIGHT = Light(sx=0.7, sy=0.25, softness=0.03, strength=1.0)
SHADOW_FADE = 0.35  # the shadow's far end is this much lighter (fill light reaches it)


@dataclass(frozen=True)
class Placement:
    """One object, in fractions of the image: where it stands, its size, its colour."""

    cx: float  # centre column / width
    base: float  # lowest row (where it touches the floor) / height
    rx: float  # half-width / width
    ry: float  # half-height / height
    color: tuple[float, float, float] | None = None  # RGB; None draws a random one
    shaded: bool = False  # darker away from the key light, a little texture; else flat
    shape: str = "ellipse"  # one of SHAPES
    soft: float = EDGE_PX  # soft-edge ramp width (px)


def soft_shape(h: int, w: int, p: Placement) -> np.ndarray:
    """Alpha of ``p``: 1 inside, 0 outside, a linear ramp ``p.soft`` px wide on the outline."""
    if p.shape not in SHAPES:
        raise ValueError(f"unknown shape {p.shape!r}; expected one of {SHAPES}")
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rx, ry = p.rx * w, p.ry * h
    cx, cy = p.cx * w, p.base * h - ry
    if p.shape == "ellipse":
        inside = (1.0 - np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)) * min(rx, ry)
    else:
        inside = np.minimum(ry - np.abs(yy - cy), rx - np.abs(xx - cx))
    return np.clip(inside / p.soft + 0.5, 0.0, 1.0).astype(np.float32)


def background(
    rng: np.random.Generator, h: int, w: int, horizon: float, texture: float, grain: float
) -> np.ndarray:
    """A wall above row ``horizon·h``, a floor below it; textured, darker towards the top."""
    yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
    wall = (rng.uniform(0.5, 0.85) + rng.uniform(-TINT, TINT, 3)).astype(np.float32)
    floor = (rng.uniform(0.35, 0.7) + rng.uniform(-TINT, TINT, 3)).astype(np.float32)
    tex = fractal_noise(rng, h, w)[..., None]
    bg = np.where((yy < horizon * h)[..., None], wall, floor)
    bg = bg * (1.0 - texture / 2 + texture * tex)
    bg = bg * (1.0 - FALLOFF * (1.0 - yy / h))[..., None]
    bg = bg + rng.normal(0.0, grain, (h, w, 1))
    return np.clip(bg, 0.0, 1.0).astype(np.float32)


def random_placements(
    rng: np.random.Generator, n: int, horizon: float, shapes: Sequence[str] = ("ellipse",)
) -> list[Placement]:
    """``n`` objects side by side on the floor, each with one saturated colour channel."""
    out = []
    for k in range(n):
        cx = (k + 1) / (n + 1) + rng.uniform(-0.05, 0.05)
        rx = rng.uniform(0.08, 0.14) / max(1.0, n * 0.7)  # narrower when they share the floor
        ry = rng.uniform(0.12, 0.2)
        base = horizon + (1.0 - horizon) * rng.uniform(0.45, 0.7)
        hue = rng.uniform(0.05, 0.95, 3)
        hue[k % 3] = rng.uniform(0.8, 1.0)  # one saturated channel: distinct from the floor
        shape = str(shapes[int(rng.integers(len(shapes)))])
        rgb = (float(hue[0]), float(hue[1]), float(hue[2]))
        out.append(Placement(cx, base, rx, ry, color=rgb, shaded=True, shape=shape))
    return out


def _colour(p: Placement, h: int, w: int, tex: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Object colour: ``p.color``, flat or shaded darker away from the key light (on the left)."""
    color = np.array(p.color if p.color is not None else rng.uniform(0.05, 0.95, 3), np.float32)
    if not p.shaded:
        return np.broadcast_to(color, (h, w, 3)).copy()
    xx = np.mgrid[0:h, 0:w][1].astype(np.float32)
    rx, cx = p.rx * w, p.cx * w
    lit = np.clip(1.0 - (xx - cx + rx) / (2 * rx), 0.0, 1.0)  # 1 on the lit side
    shade = (1.0 - SHADE + SHADE * lit)[..., None]
    return np.clip(color * shade + OBJECT_TEXTURE * (tex - 0.5), 0.0, 1.0).astype(np.float32)


def procedural_scene(
    seed: int | np.random.Generator = 0,
    size: int | tuple[int, int] = 256,
    n_objects: int = 1,
    *,
    objects: Sequence[Placement] | None = None,
    shadow: bool = True,
    darkness: float | tuple[float, float] = DARKNESS,
    horizon: float | None = None,
    texture: float = TEXTURE,
    grain: float = GRAIN,
    shapes: Sequence[str] = ("ellipse",),
) -> LayerStack:
    """A scene with its objects and their cast shadows, as a ground-truth stack (back to front).

    ``seed`` is an int or a Generator (all randomness flows from it); ``size`` is a side or
    ``(height, width)``. ``objects`` places objects by hand (then ``n_objects`` is ignored);
    otherwise ``n_objects`` are drawn with silhouettes from ``shapes``. ``darkness`` is the
    shadow's darkening in its umbra by the contact (a slim object's is a little lighter),
    fixed or a range to draw from; ``shadow=False`` gives
    every object an all-ones attenuation. ``horizon`` is the wall/floor row as a fraction of
    the height (drawn in 0.35–0.5 when None).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    h, w = (size, size) if isinstance(size, int) else size
    horizon = float(rng.uniform(0.35, 0.5)) if horizon is None else horizon
    bg = background(rng, h, w, horizon, texture, grain)
    placed = (
        list(objects) if objects is not None else random_placements(rng, n_objects, horizon, shapes)
    )
    tex = fractal_noise(rng, h, w)[..., None]
    colors, alphas, shadows = [], [], []
    for p in placed:
        alpha = soft_shape(h, w, p)
        colors.append(_colour(p, h, w, tex, rng))
        alphas.append(alpha)
        s = np.ones((h, w), np.float32)
        if shadow:
            dark = darkness if isinstance(darkness, float | int) else rng.uniform(*darkness)
            base_row = min(h - 1, int(round(p.base * h)))
            occl = cast_shadow(alpha, base_row, KEY_LIGHT, fade=SHADOW_FADE)
            s = 1.0 - float(dark) * occl
        shadows.append(np.repeat(np.clip(s, 0, 1)[..., None], 3, axis=2).astype(np.float32))
    meta = {"generator": "procedural_scene", "horizon": horizon}
    if not isinstance(seed, np.random.Generator):
        meta["seed"] = int(seed)
    return LayerStack.from_arrays(
        bg, colors, alphas, shadows, [f"blob_{k + 1}" for k in range(len(placed))], meta
    )


def procedural_photo(seed: int, size: int = 256, n_objects: int = 1, jpeg: bool = True) -> bytes:
    """Encoded photo (JPEG q92 or PNG) of :func:`procedural_scene`."""
    from liwi.imageio import encode_jpeg, encode_png

    img = procedural_scene(seed, size, n_objects).composite()
    return encode_jpeg(img, quality=92) if jpeg else encode_png(img)


def write_scene_table(out: str, n: int, size: int = 128, seed: int = 0) -> str:
    """Write ``n`` scenes (1–2 objects, ellipses and boxes) as a layer table, 80/10/10 splits."""
    from liwi.schema import sample_id_for, stack_to_row
    from liwi.table import write_table

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        stack = procedural_scene(rng, size, int(rng.integers(1, 3)), shapes=SHAPES)
        split = "train" if i % 10 < 8 else ("val" if i % 10 == 8 else "test")
        rows.append(
            stack_to_row(
                stack,
                sample_id=sample_id_for(f"procedural-{seed}-{i}".encode()),
                source_uri=f"procedural://{seed}/{i}",
                split=split,
            )
        )
    write_table(rows, out, name="procedural")
    return out
