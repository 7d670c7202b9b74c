"""Full-resolution layer maps from one peeling pass: :func:`assemble` and its hole fill
(on a worker thread, beside the edge colours).

The predictor upsamples the network's low-resolution answer to the photo's size; here the
object's alpha and colour, the shadow and the background are put together so that pixels
far from the object and its shadow are the input's own.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from liwi.layers import channel_min

# Background: pixels farther than REGION_GROW_FRAC × long side from the object (alpha >
# 0.02) and the shadow (attenuation < 0.98) keep the input's own values.
REGION_GROW_FRAC = 0.03
# Near the object and its shadow the background is the input lifted by a mix of the two
# heads' answers: (1 − SHADOW_LIFT_SHARE) × the background head's change plus
# SHADOW_LIFT_SHARE × the shadow head's own, I ÷ max(Ŝ, SHADOW_FLOOR) − I. Bg in the
# shadow ÷ identity on held-out B / E: background head alone 0.3161 / 0.3665, share 0.35
# 0.3148 / 0.3621, 0.5 0.3160 / 0.3634, 0.65 0.3182 / 0.3665, shadow head alone 0.327 /
# 0.380 (benchmarks/RESULTS.md, 16th session; C and D checked after the choice).
SHADOW_LIFT_SHARE = 0.35
SHADOW_FLOOR = 0.05  # the darkest attenuation divided by: a lift at most 20×
# Under the object: pixels with alpha above HOLE_ALPHA, grown by HOLE_GROW_PX, are
# inpainted at HOLE_FILL_SCALE of the photo's size, at most HOLE_FILL_SIDE px on the long
# side. The scale: the held-out rows (320 px) filled at 200 px score as at full size
# (rendered split E: bg L1 in the shadow 0.3665 vs 0.3669 × identity, RGB L1 0.0251 both),
# and a 512² photo's fill takes a third of the time (benchmarks/RESULTS.md, 15th session).
HOLE_ALPHA = 0.05
HOLE_GROW_PX = 2
HOLE_FILL_SCALE = 0.625
HOLE_FILL_SIDE = 640

_fill_pool: ThreadPoolExecutor | None = None


def fill_pool() -> ThreadPoolExecutor:
    """One worker thread for :func:`fill_hole` (created on first use): OpenCV's inpainting
    and numpy run without the GIL, so the fill overlaps the edge colours on a second core."""
    global _fill_pool
    if _fill_pool is None:
        _fill_pool = ThreadPoolExecutor(1, thread_name_prefix="liwi-fill")
    return _fill_pool


def _forget_fill_pool() -> None:
    """A forked child has no copy of the parent's worker thread: it makes its own pool."""
    global _fill_pool
    _fill_pool = None


os.register_at_fork(after_in_child=_forget_fill_pool)


def assemble(raw: dict, alpha: np.ndarray | None = None) -> dict:
    """Full-resolution layer maps from one pass's upsampled network output.

    ``alpha`` (the prior's object alpha) replaces the network's. The object's colour is
    the input's inside the object and its nearby interior's on the soft edge
    (:func:`liwi.priors.refine.edge_colours`: on held-out rows closer to the true colour
    than the network's 128-px colour head). The background is the
    input's own pixels far from the object and its shadow; around them, the input plus
    the predicted change (the shadow lifted: :func:`background_lift`), fading out over
    ``REGION_GROW_FRAC`` of the long side; under the object, an inpainted fill
    (:func:`fill_hole`: on held-out synthetic samples with the true mask, Telea's fill
    is closer to the true background, L1 0.128, than the network's 128-px one, 0.143).
    """
    import cv2

    im = raw["image"]
    own = np.clip(raw["alpha"][..., 0], 0.0, 1.0)
    a = own if alpha is None else np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    shadow = np.clip(raw["shadow"], 0.0, 1.0)
    from liwi.priors.refine import edge_colours

    touched = (np.maximum(a, own) > 0.02) | (channel_min(shadow) < 0.98)
    grow = max(2.0, REGION_GROW_FRAC * max(im.shape[:2]))
    dist = cv2.distanceTransform((~touched).astype(np.uint8), cv2.DIST_L2, 5)
    dist = np.minimum(dist, grow)  # no touched pixel: the transform answers ~FLT_MAX
    region = np.clip(2.0 - 2.0 * dist / grow, 0.0, 1.0)[..., None]  # 1 near, 0 beyond grow
    outside = np.clip(im + region * background_lift(im, raw["bg_delta"], shadow), 0.0, 1.0)
    filling = fill_pool().submit(fill_hole, outside, a > HOLE_ALPHA)
    color = edge_colours(im, a)
    # Beyond the region the background is the input itself, so the shadow there is none
    # (S = 1): the layers recomposite to the input exactly, and the shadow layer crops to
    # where it darkens instead of spanning the frame with sub-2 % noise.
    # Under the object the shadow is the network's own: it is trained on the whole
    # attenuation, hidden part included. (A fill from the visible shadow around the object,
    # used up to stage 6, scored lower with stage 6 on every held-out split: RESULTS.md.)
    shadow = np.where(region > 0.0, shadow, np.float32(1.0))
    return {"alpha": a, "color": color, "background": filling.result(), "shadow": shadow}


def background_lift(image: np.ndarray, bg_delta: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    """The change from the photo to its background where a shadow is lifted: the background
    head's ``bg_delta`` mixed with the shadow head's own lift, I ÷ Ŝ − I (SHADOW_LIFT_SHARE)."""
    share = np.float32(SHADOW_LIFT_SHARE)
    lift = np.divide(image, np.maximum(shadow, np.float32(SHADOW_FLOOR)))
    np.minimum(lift, 1.0, out=lift)  # in place: fewer full-frame temporaries
    lift -= image
    lift *= share
    lift += (1.0 - share) * bg_delta
    return lift


def fill_hole(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``image`` with ``hole`` (grown by HOLE_GROW_PX) filled by the classical inpainter.

    The fill is computed at ``HOLE_FILL_SCALE`` of the size, at most ``HOLE_FILL_SIDE`` px
    on the long side (a fill is smooth; this bounds its cost), and upsampled; pixels
    outside the hole are the input's own.
    """
    import cv2

    if not hole.any():
        return image
    h, w = hole.shape
    grown = cv2.dilate(hole.astype(np.uint8), np.ones((2 * HOLE_GROW_PX + 1,) * 2, np.uint8))
    scale = min(HOLE_FILL_SCALE, HOLE_FILL_SIDE / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else image
    small_hole = (
        cv2.resize(grown, (sw, sh), interpolation=cv2.INTER_NEAREST) if scale < 1 else grown
    )
    from liwi.tools.base import ToolError
    from liwi.tools.inpaint import ClassicalInpainter, ClassicalInpaintParams, InpaintInput

    fill_params = ClassicalInpaintParams(dilate_px=0)  # the hole is grown above
    try:  # coarse-to-fine Telea with the ring's texture: fewer streaks in large holes
        filled = (
            ClassicalInpainter()
            .run(InpaintInput(image=small, mask=small_hole.astype(np.float32)), fill_params)
            .image
        )
    except ToolError:  # the hole is (almost) the whole image: nothing to fill from
        return image
    if scale < 1:
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(grown[..., None] > 0, filled, image).astype(np.float32)
