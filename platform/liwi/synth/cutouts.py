"""Real object cut-outs (RGBA photographs with their own alpha) as synthetic objects.

A procedural shape filled with a photo patch is not what people call an object, and a
salient-object prior rightly ignores it. A real cut-out (an animal, a fruit, a guitar with
its true alpha) gives labels that agree with what people see, so the same generator can
build splits that score alpha as it matters on real photos. The cut-out is scaled to the
object's height, mirrored at random and stood on its contact row; its own lighting is
kept (no relief shading), the scene's cast is added by ``objects.harmonize``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from liwi.synth.objects import SceneObject, paste

MIN_OPAQUE_PIXELS = 400  # fewer opaque pixels than a 20×20 patch: not an object
MAX_WIDTH_FRAC = 0.7  # a wide cut-out is scaled down so it spans at most this much canvas


@dataclass(frozen=True)
class Cutout:
    """One decoded cut-out, cropped to its alpha's bounding box."""

    name: str  # path relative to the folder, recorded in generator traces
    rgba: np.ndarray  # H×W×4 float32, straight alpha


@lru_cache(maxsize=2)
def load_cutouts(folder: str) -> tuple[Cutout, ...]:
    """Every ``*.png`` under ``folder`` (recursively, sorted) that has real transparency.

    Files without an alpha channel, or with too few opaque pixels, are skipped; a folder
    that leaves none is an error naming it.
    """
    from liwi.imageio import decode_rgba

    root = Path(folder)
    files = sorted(root.rglob("*.png")) if root.is_dir() else []
    found = []
    for f in files:
        rgba = decode_rgba(f.read_bytes())
        opaque = rgba[..., 3] > 0.5
        if opaque.sum() < MIN_OPAQUE_PIXELS or opaque.all():
            continue
        ys, xs = np.nonzero(rgba[..., 3] > 0.02)
        crop = rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        found.append(Cutout(str(f.relative_to(root)), np.ascontiguousarray(crop)))
    if not found:
        raise FileNotFoundError(f"no cut-outs (RGBA *.png with transparency) under {root}")
    return tuple(found)


def build_cutout_object(
    rng: np.random.Generator,
    canvas: tuple[int, int],
    centre_x: float,
    base_y: int,
    height: int,
    cutouts: tuple[Cutout, ...],
) -> SceneObject:
    """A random cut-out about ``height`` pixels tall standing at (centre_x, base_y)."""
    import cv2

    cw = canvas[1]
    cut = cutouts[int(rng.integers(len(cutouts)))]
    mirrored = bool(rng.random() < 0.5)
    rgba = cut.rgba[:, ::-1] if mirrored else cut.rgba
    mh, mw = rgba.shape[:2]
    scale = min(height / mh, MAX_WIDTH_FRAC * cw / mw)
    h, w = max(4, round(mh * scale)), max(4, round(mw * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    # Resize premultiplied colour, so transparent pixels' colour does not bleed in.
    premul = np.concatenate([rgba[..., :3] * rgba[..., 3:], rgba[..., 3:]], axis=2)
    small = cv2.resize(np.ascontiguousarray(premul), (w, h), interpolation=interp)
    alpha = np.clip(small[..., 3], 0.0, 1.0)
    color = np.where(
        alpha[..., None] > 1e-4, small[..., :3] / np.maximum(alpha, 1e-4)[..., None], 0
    )
    color = np.clip(color, 0.0, 1.0)
    alpha[alpha < 1.0 / 255] = 0.0  # no invisible fringe far beyond the object

    full_c, full_a = paste(color, alpha, canvas, centre_x, base_y)
    params = {
        "kind": "real",
        "source": {"cutout": cut.name, "mirrored": mirrored},
        "height": h,
        "width": w,
        "centre_x": float(centre_x),
        "base_y": int(base_y),
    }
    return SceneObject(full_c, full_a, int(base_y), "real_cutout", params)
