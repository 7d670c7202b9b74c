"""Prompt rasterisation: a soft mask, a box or points become extra input channels.

Channel order is :data:`liwi.model.config.PROMPT_CHANNELS` (mask, box, points). A
missing prompt is all-zero, which the model reads as "the main foreground object".
Coordinates are in pixels of the image they refer to; :func:`rasterize` draws them at
any target size, so a prompt given on a 4000-px photo lands right on the 128-px input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Radius (as a fraction of the long side) of the Gaussian drawn for each point.
POINT_SIGMA_FRAC = 0.02


class PromptError(ValueError):
    """A prompt is malformed (box outside the image, mask of the wrong size …)."""


@dataclass
class Prompt:
    """Which object to peel: any mix of a soft mask, one box and some points."""

    mask: np.ndarray | None = None  # H×W float in [0, 1] at the image's resolution
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 (pixels, excl.)
    points: list[tuple[float, float]] = field(default_factory=list)  # (x, y) pixels

    @property
    def empty(self) -> bool:
        return self.mask is None and self.box is None and not self.points

    def validate(self, height: int, width: int) -> None:
        """Raise :class:`PromptError` if the prompt does not fit an image of this size."""
        if self.mask is not None:
            m = np.asarray(self.mask)
            if m.shape != (height, width):
                raise PromptError(f"mask shape {m.shape} != image size {(height, width)}")
        if self.box is not None:
            if len(self.box) != 4:
                raise PromptError(f"box needs 4 numbers x0,y0,x1,y1, got {self.box}")
            x0, y0, x1, y1 = self.box
            if not (x1 > x0 and y1 > y0):
                raise PromptError(f"box {self.box} is empty (need x1 > x0 and y1 > y0)")
            if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                raise PromptError(f"box {self.box} lies outside the {width}×{height} image")
        for x, y in self.points:
            if not (0 <= x < width and 0 <= y < height):
                raise PromptError(f"point ({x}, {y}) lies outside the {width}×{height} image")


def rasterize(
    prompt: Prompt | None, src_size: tuple[int, int], dst_size: tuple[int, int]
) -> np.ndarray:
    """Prompt on an image of ``src_size`` (h, w) → 3×h'×w' float32 channels at ``dst_size``.

    The content is scaled by ``dst/src`` per axis (the caller pads afterwards).
    """
    sh, sw = src_size
    dh, dw = dst_size
    out = np.zeros((3, dh, dw), np.float32)
    if prompt is None or prompt.empty:
        return out
    prompt.validate(sh, sw)
    fy, fx = dh / sh, dw / sw
    if prompt.mask is not None:
        from PIL import Image

        m = np.clip(np.asarray(prompt.mask, np.float32), 0.0, 1.0)
        shrink = dh < sh or dw < sw  # area-average when shrinking, interpolate when growing
        resample = Image.BOX if shrink else Image.BILINEAR
        out[0] = np.asarray(Image.fromarray(m, mode="F").resize((dw, dh), resample))
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        c0, r0 = max(0, int(np.floor(x0 * fx))), max(0, int(np.floor(y0 * fy)))
        c1, r1 = min(dw, int(np.ceil(x1 * fx))), min(dh, int(np.ceil(y1 * fy)))
        out[1, r0:r1, c0:c1] = 1.0
    if prompt.points:
        sigma = max(1.0, POINT_SIGMA_FRAC * max(dh, dw))
        yy, xx = np.mgrid[0:dh, 0:dw].astype(np.float32)
        for x, y in prompt.points:
            cx, cy = (x + 0.5) * fx - 0.5, (y + 0.5) * fy - 0.5
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
            out[2] = np.maximum(out[2], blob)
    return np.clip(out, 0.0, 1.0)
