"""``refine_alpha``: a soft alpha matte and decontaminated colour from a binary mask.

A trimap is cut around the mask boundary (sure object = the mask eroded by ``band_px``,
sure background = outside the mask dilated by ``band_px``, unknown in between). pymatting
solves the matte only inside a crop around the unknown band, at most ``max_side`` pixels
on its longer side (the crop is shrunk if larger, and the matte upsampled inside the band
only, so sure regions stay exact). ``estimate_foreground_ml`` then recovers the object's
own colour at the edge, so hair and soft edges do not carry the old background along.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from liwi.tools.arrays import as_image, as_mask, dilate, erode, resize, scale_for
from liwi.tools.base import Tool, ToolError, ToolParams


@dataclass
class MattingInput:
    image: np.ndarray  # H×W×3 float32 in [0, 1]
    mask: np.ndarray  # H×W float32, > 0.5 = object (e.g. a segment candidate)


@dataclass
class MattingOutput:
    alpha: np.ndarray  # H×W float32 in [0, 1]
    foreground: np.ndarray  # H×W×3 float32: object colour F, valid where alpha > 0
    trimap: np.ndarray  # H×W float32: 0 background, 0.5 unknown, 1 object


class MattingParams(ToolParams):
    band_px: int = Field(
        6, ge=1, le=64, description="half-width (px) of the unknown band around the mask edge"
    )
    method: Literal["cf", "knn", "lkm"] = Field(
        "cf", description="pymatting solver: closed-form, KNN or large-kernel closed-form"
    )
    max_side: int = Field(
        512, ge=64, le=4096, description="matte at most this many px on the crop's longer side"
    )
    estimate_foreground: bool = Field(
        True, description="recover edge colours (multi-level foreground estimation)"
    )


def make_trimap(mask: np.ndarray, band_px: int) -> np.ndarray:
    """Trimap (0 / 0.5 / 1) from a binary mask with an unknown band of ``band_px``."""
    binary = mask > 0.5
    band = band_px
    fg = erode(binary, band)
    while not fg.any() and band > 1:  # thin object: shrink the band rather than fail
        band //= 2
        fg = erode(binary, band)
    if not fg.any():
        raise ToolError("mask is too thin for a trimap (nothing survives a 1 px erosion)")
    bg = ~dilate(binary, band_px)
    tri = np.full(mask.shape, 0.5, np.float32)
    tri[fg] = 1.0
    tri[bg] = 0.0
    return tri


class AlphaRefiner(Tool[MattingInput, MattingOutput]):
    """Trimap + pymatting alpha + foreground colour estimation."""

    name = "refine_alpha"
    description = (
        "Turn a binary object mask into a soft alpha matte (hair, soft edges) and estimate "
        "the object's true edge colours, free of the old background."
    )
    Params = MattingParams
    backend = "classical"

    def run(self, inputs: MattingInput, params: MattingParams) -> MattingOutput:
        image = as_image(inputs.image)
        h, w = image.shape[:2]
        mask = as_mask(inputs.mask, (h, w))
        if not (mask > 0.5).any():
            raise ToolError("mask is empty")
        if (mask > 0.5).all():
            raise ToolError("mask covers the whole image; nothing to matte against")
        trimap = make_trimap(mask, params.band_px)
        unknown = trimap == 0.5
        alpha = trimap.copy()
        foreground = image.copy()
        if not unknown.any():
            return MattingOutput(alpha=alpha, foreground=foreground, trimap=trimap)
        ys, xs = np.nonzero(unknown)
        pad = 2 * params.band_px + 8
        y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)
        x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
        crop, tri_crop = image[y0:y1, x0:x1], trimap[y0:y1, x0:x1]
        a_crop = self._matte(crop, tri_crop, params)
        band = unknown[y0:y1, x0:x1]
        alpha[y0:y1, x0:x1][band] = a_crop[band]
        if params.estimate_foreground:
            from pymatting import estimate_foreground_ml

            fg = estimate_foreground_ml(
                crop.astype(np.float64), alpha[y0:y1, x0:x1].astype(np.float64)
            )
            fg_crop = np.clip(fg, 0.0, 1.0).astype(np.float32)
            # Only edge colours change; sure object pixels keep the image exactly.
            soft = (alpha[y0:y1, x0:x1] < 1.0)[..., None]
            foreground[y0:y1, x0:x1] = np.where(soft, fg_crop, crop)
        return MattingOutput(alpha=alpha, foreground=foreground, trimap=trimap)

    @staticmethod
    def _matte(crop: np.ndarray, tri: np.ndarray, params: MattingParams) -> np.ndarray:
        """Alpha of a crop, solved at ≤ ``max_side`` px and upsampled to the crop size."""
        import pymatting

        s = scale_for(crop.shape, params.max_side)
        if s < 1.0:
            size = (max(8, round(crop.shape[0] * s)), max(8, round(crop.shape[1] * s)))
            small, t = resize(crop, size), resize(tri, size)
            t = np.where(t > 0.999, 1.0, np.where(t < 0.001, 0.0, 0.5))
        else:
            small, t = crop, tri
        if not (t == 1.0).any() or not (t == 0.0).any():
            raise ToolError("trimap lost its sure object or background at matting resolution")
        solver = {
            "cf": pymatting.estimate_alpha_cf,
            "knn": pymatting.estimate_alpha_knn,
            "lkm": pymatting.estimate_alpha_lkm,
        }[params.method]
        try:
            a = solver(small.astype(np.float64), t.astype(np.float64))
        except Exception as exc:  # solver failures (singular systems) become a reason
            raise ToolError(f"matting ({params.method}) failed: {exc}") from exc
        a = np.clip(a, 0.0, 1.0).astype(np.float32)
        return resize(a, crop.shape[:2]) if s < 1.0 else a
