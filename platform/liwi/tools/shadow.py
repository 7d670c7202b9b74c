"""``extract_shadow``: the cast shadow / contact darkening an object causes, as a layer.

Given the photo ``I``, the object's alpha and the object-removed background ``B₀`` (an
inpainting of ``I`` under the object, so ``B₀`` still contains the shadow), the tool

1. estimates the *lit* surround: ``B₀`` re-inpainted over a disc around the object (from
   the ring outside it) at reduced resolution;
2. marks candidate shadow pixels near the object that are darker than that estimate by
   more than ``darkness`` with roughly the same chromaticity (shadows darken all channels
   alike), keeps the connected parts attached to the object and larger than ``min_area``;
3. re-inpaints ``B₀`` over that region at full resolution (a shadow-free estimate ``B*``),
   forms the attenuation ``S = clip(B₀ / B*, 0, 1)`` (grey or RGB), smooths it, feathers
   it to 1 outside the region, and returns the shadow-free background ``B = B₀ / S``
   (texture kept; the object's own area re-filled from the shadow-free surround).

By construction ``B ⊙ S = B₀`` wherever ``S`` is not clipped, so the stack
``I = α·F + (1 − α)·(B ⊙ S)`` reproduces the observed non-object pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from liwi.tools.arrays import as_image, as_mask, dilate, resize, scale_for, weighted_blur
from liwi.tools.base import Tool, ToolError, ToolParams
from liwi.tools.inpaint import ClassicalInpaintParams, fill_multiscale

# Rec. 709 luma weights on sRGB values: good enough to compare darkness.
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


@dataclass
class ShadowInput:
    image: np.ndarray  # H×W×3 float32: the photo I
    alpha: np.ndarray  # H×W float32: the object's alpha
    background: np.ndarray  # H×W×3 float32: I with the object inpainted away (shadow kept)


@dataclass
class ShadowOutput:
    attenuation: np.ndarray  # H×W×3 float32 S in [0, 1]; 1 = no shadow
    background: np.ndarray  # H×W×3 float32: shadow-free background B (B ⊙ S ≈ input bg)
    region: np.ndarray  # H×W float32 {0, 1}: where the shadow was found
    found: bool  # False: no shadow; S is all ones and B is the input background
    stats: dict[str, float] = field(default_factory=dict)  # area, mean/min attenuation, …


class ShadowParams(ToolParams):
    search_radius: float = Field(
        1.0, gt=0.0, le=3.0, description="look this far from the object (× its longer bbox side)"
    )
    darkness: float = Field(
        0.12, gt=0.0, lt=1.0, description="min relative darkening vs the lit surround estimate"
    )
    chroma_tol: float = Field(
        0.05, gt=0.0, le=1.0, description="max chromaticity change (shadows keep the hue)"
    )
    min_area: float = Field(
        0.02, ge=0.0, le=1.0, description="smallest shadow, as a fraction of the object's area"
    )
    max_area: float = Field(
        3.0, gt=0.0, le=50.0, description="largest shadow, × the object's area (else: dark scenery)"
    )
    below: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="shadow pixels must lie below this fraction of the object's height "
        "(0 = anywhere, 0.5 = level with its lower half or lower; ground shadows)",
    )
    attach_px: int = Field(
        4, ge=0, le=64, description="a shadow part must come this close (px) to the object"
    )
    smoothing: float = Field(
        1.0, ge=0.0, le=32.0, description="Gaussian sigma (px) smoothing the attenuation"
    )
    feather_px: int = Field(4, ge=0, le=64, description="soft edge (px) of the shadow region")
    min_attenuation: float = Field(
        0.05, ge=0.0, lt=1.0, description="floor of S, so B = B₀ / S stays bounded"
    )
    color: bool = Field(False, description="RGB attenuation (coloured shadows) instead of grey")
    work_side: int = Field(384, ge=64, le=2048, description="detection runs at this longer side")
    refill_object: bool = Field(
        True, description="re-inpaint the object's area from the shadow-free surround"
    )


class ShadowExtractor(Tool[ShadowInput, ShadowOutput]):
    """Darker-than-surround, hue-preserving, attached region → attenuation layer."""

    name = "extract_shadow"
    description = (
        "Find the cast shadow and contact darkening of an object and split it off as a "
        "multiply (attenuation) layer, leaving a shadow-free background."
    )
    Params = ShadowParams
    backend = "classical"

    def run(self, inputs: ShadowInput, params: ShadowParams) -> ShadowOutput:
        _, _, bg0, obj = checked_input(inputs)
        region = self.detect(bg0, obj, params)
        if region is None:
            return no_shadow(bg0)
        return self.separate(bg0, obj, region, params)

    # -- step 1+2: detection at reduced resolution ------------------------------------
    @staticmethod
    def detect(bg0: np.ndarray, obj: np.ndarray, params: ShadowParams) -> np.ndarray | None:

        h, w = obj.shape
        s = scale_for(obj.shape, params.work_side)
        size = (max(8, round(h * s)), max(8, round(w * s)))
        small = resize(bg0, size)
        obj_s = resize(obj.astype(np.float32), size) > 0.5
        if not obj_s.any():
            obj_s = resize(obj.astype(np.float32), size) > 0.0
        ys, xs = np.nonzero(obj_s)
        side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
        radius = max(3, int(params.search_radius * side))
        disc = dilate(obj_s, radius)
        if disc.all():
            disc = dilate(obj_s, max(2, radius // 2))
            if disc.all():
                return None  # no lit surround to compare with
        search = disc & ~dilate(obj_s, 1)
        if params.below > 0:  # cast/contact shadows fall at or below the object's base
            search[: int(ys.min() + params.below * (ys.max() - ys.min() + 1))] = False
        lit = fill_multiscale(small, disc, ClassicalInpaintParams(texture=0.0))
        dark = shadow_evidence(small, lit, params.darkness, params.chroma_tol, size)
        seed = attached(dark & search, obj_s, params, s)
        if not seed.any():
            return None
        # Second pass: with the strong shadow known, estimate the lit surround from just
        # around it (closer context) and grow into weaker, connected darkening (hysteresis).
        grow = max(3, radius // 3)
        around = dilate(seed, grow) & ~obj_s
        lit2 = fill_multiscale(small, around | obj_s, ClassicalInpaintParams(texture=0.0))
        weak = shadow_evidence(small, lit2, params.darkness / 2, params.chroma_tol, size)
        keep = attached((weak & around & search) | seed, obj_s, params, s)
        if keep.sum() > params.max_area * obj_s.sum():
            return None  # far larger than the object: dark scenery, not its shadow
        region = resize(keep.astype(np.float32), (h, w)) > 0.5
        region &= ~obj
        return region if region.any() else None

    # -- step 3: attenuation + shadow-free background at full resolution ---------------
    @staticmethod
    def separate(
        bg0: np.ndarray, obj: np.ndarray, region: np.ndarray, params: ShadowParams
    ) -> ShadowOutput:
        import cv2

        # The fill zone reaches a little past the detected region, where the darkening
        # has faded (so the ratio there is ≈ 1); S ramps to exactly 1 at its outer edge.
        grow = params.feather_px + 2
        zone = dilate(region, grow) & ~obj
        shadow_free = fill_multiscale(bg0, zone | obj, ClassicalInpaintParams(texture=0.0))
        ratio = np.clip((bg0 + 1e-3) / (shadow_free + 1e-3), 0.0, 1.0)
        if not params.color:
            ratio = np.repeat((ratio @ LUMA)[..., None], 3, axis=2)
        inside = cv2.distanceTransform(zone.astype(np.uint8), cv2.DIST_L2, 3)
        weight = np.clip(inside / max(1.0, float(params.feather_px)), 0.0, 1.0)
        weight = np.where(region, 1.0, weight).astype(np.float32)
        weight = weight * ~obj
        if params.smoothing > 0:
            # normalised convolution: smooth S using only in-region ratios
            ratio, _ = weighted_blur(ratio, weight, params.smoothing, 1.0)
        s = 1.0 - weight[..., None] * (1.0 - np.clip(ratio, 0.0, 1.0))
        s = np.clip(s, params.min_attenuation, 1.0).astype(np.float32)
        background = np.clip(bg0 / s, 0.0, 1.0)
        if params.refill_object:  # the object's area was filled from the shadowed surround
            background = fill_multiscale(background, obj, ClassicalInpaintParams(texture=0.0))
        shadow_px = s.mean(axis=2) < 0.98
        stats = {
            "area": float(shadow_px.mean()),
            "area_vs_object": float(shadow_px.sum() / max(1, obj.sum())),
            "mean_attenuation": float(s.mean(axis=2)[shadow_px].mean()) if shadow_px.any() else 1.0,
            "min_attenuation": float(s.min()),
        }
        return ShadowOutput(
            attenuation=s,
            background=background.astype(np.float32),
            region=region.astype(np.float32),
            found=bool(shadow_px.any()),
            stats=stats,
        )


def shadow_evidence(
    small: np.ndarray, lit: np.ndarray, darkness: float, chroma_tol: float, size: tuple[int, int]
) -> np.ndarray:
    """Pixels darker than ``lit`` by more than ``darkness`` with about the same chromaticity."""
    import cv2

    sigma = max(1.0, 1.5 * min(size) / 384)
    img_b = cv2.GaussianBlur(small, (0, 0), sigma)
    lit_b = cv2.GaussianBlur(lit, (0, 0), sigma)
    ratio = (img_b @ LUMA + 1e-3) / (lit_b @ LUMA + 1e-3)
    chroma = img_b / (img_b.sum(axis=2, keepdims=True) + 1e-3)
    chroma_lit = lit_b / (lit_b.sum(axis=2, keepdims=True) + 1e-3)
    chroma_ok = np.abs(chroma - chroma_lit).max(axis=2) < chroma_tol
    return (ratio < 1.0 - darkness) & chroma_ok


def attached(cand: np.ndarray, obj: np.ndarray, params: ShadowParams, scale: float) -> np.ndarray:
    """Cleaned connected parts of ``cand`` that touch the object and are large enough."""
    import cv2

    c = cv2.morphologyEx(cand.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    c = (cv2.morphologyEx(c, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0) & ~obj
    near = dilate(obj, 2 + int(round(params.attach_px * scale)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(c.astype(np.uint8), 8)
    min_px = max(4.0, params.min_area * obj.sum())
    keep = np.zeros_like(c)
    for i in range(1, n):
        comp = labels == i
        if stats[i, cv2.CC_STAT_AREA] >= min_px and (comp & near).any():
            keep |= comp
    return keep


def checked_input(inputs: ShadowInput) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(image, alpha, background B₀, object mask alpha > 0.5)`` of a valid input; a
    :class:`ToolError` for a background of another size or an empty alpha (every backend)."""
    image = as_image(inputs.image)
    h, w = image.shape[:2]
    alpha = as_mask(inputs.alpha, (h, w), "alpha")
    bg0 = as_image(inputs.background, "background")
    if bg0.shape != image.shape:
        raise ToolError(f"background shape {bg0.shape} does not match image {image.shape}")
    obj = alpha > 0.5
    if not obj.any():
        raise ToolError("alpha is empty: no object to find a shadow for")
    return image, alpha, bg0, obj


def no_shadow(bg0: np.ndarray) -> ShadowOutput:
    h, w = bg0.shape[:2]
    return ShadowOutput(
        attenuation=np.ones((h, w, 3), np.float32),
        background=bg0,
        region=np.zeros((h, w), np.float32),
        found=False,
        stats={"area": 0.0, "area_vs_object": 0.0, "mean_attenuation": 1.0, "min_attenuation": 1.0},
    )
