"""Prompt rasterisation: a soft mask, a box or points become extra input channels.

Channel order is :data:`liwi.model.config.PROMPT_CHANNELS` (mask, box, points). A
missing prompt is all-zero, which the model reads as "the main foreground object".
Coordinates are in pixels of the image they refer to; :func:`rasterize` draws them at
any target size, so a prompt given on a 4000-px photo lands right on the 128-px input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Radius (as a fraction of the long side) of the Gaussian drawn for each point.
POINT_SIGMA_FRAC = 0.02


class PromptError(ValueError):
    """A prompt is malformed (box outside the image, mask of the wrong size …)."""


@dataclass
class Prompt:
    """Which object to peel: any mix of a soft mask, one box and some points.

    The one prompt type of the platform: the CLI, the HTTP API, training and the benchmarks
    build it, and :meth:`validate` is the one rule it must pass.
    """

    mask: np.ndarray | None = None  # H×W float in [0, 1] at the image's resolution
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 (pixels, excl.)
    points: list[tuple[float, float]] = field(default_factory=list)  # (x, y) pixels

    @property
    def empty(self) -> bool:
        return self.mask is None and self.box is None and not self.points

    @property
    def names_the_object(self) -> bool:
        """Points or a mask say what to take (a box alone leaves the prior to plan it)."""
        return bool(self.points) or self.mask is not None

    def scaled(self, fx: float, fy: float) -> Prompt:
        """The box and points on the image resized by ``fx`` (x) and ``fy`` (y).

        For photos downscaled while decoding; a mask is kept as it is (give it at the new
        size, e.g. ``decode_grey(data, size=...)``).
        """
        if fx == 1 and fy == 1:
            return self
        box = None
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            box = (x0 * fx, y0 * fy, x1 * fx, y1 * fy)
        points = [(x * fx, y * fy) for x, y in self.points]
        return Prompt(mask=self.mask, box=box, points=points)

    def validate(self, height: int, width: int) -> None:
        """Raise :class:`PromptError` unless the prompt lies inside an image of this size.

        A box must be finite, non-empty and within ``[0, width] × [0, height]``; a point
        within ``[0, width) × [0, height)``; a mask exactly ``height × width``.
        """
        if self.mask is not None:
            m = np.asarray(self.mask)
            if m.shape != (height, width):
                shape = f"{m.shape[1]}×{m.shape[0]}" if m.ndim == 2 else str(m.shape)
                raise PromptError(f"mask shape {shape} does not match the image {width}×{height}")
        if self.box is not None:
            if len(self.box) != 4:
                raise PromptError(f"box needs 4 numbers x0,y0,x1,y1, got {self.box}")
            if not all(np.isfinite(self.box)):
                raise PromptError(f"box {self.box}: coordinates must be finite numbers")
            x0, y0, x1, y1 = self.box
            if not (x1 > x0 and y1 > y0):
                raise PromptError(f"box {self.box} is empty (need x1 > x0 and y1 > y0)")
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                raise PromptError(f"box {self.box} lies outside the {width}×{height} image")
        for i, (x, y) in enumerate(self.points):
            if not (0 <= x < width and 0 <= y < height):
                raise PromptError(
                    f"points[{i}] = ({x}, {y}) lies outside the {width}×{height} image"
                )


def _numbers(text: str, n: int, form: str) -> tuple[float, ...]:
    parts = text.split(",")
    if len(parts) != n:
        raise PromptError(f"expected {form} — got {text!r}")
    try:
        return tuple(float(p) for p in parts)
    except ValueError as exc:
        raise PromptError(f"expected numbers {form} — got {text!r}") from exc


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x0,y0,x1,y1"`` (pixels) → a box; :class:`PromptError` if malformed."""
    x0, y0, x1, y1 = _numbers(text, 4, "x0,y0,x1,y1")
    return x0, y0, x1, y1


def parse_point(text: str) -> tuple[float, float]:
    """``"x,y"`` (pixels) → a point; :class:`PromptError` if malformed."""
    x, y = _numbers(text, 2, "x,y")
    return x, y


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


def network_inputs(image: Any, prompt: Any = None) -> Any:
    """The prompt tensor a network takes beside ``image`` (B×3×H×W): ``prompt`` checked to
    be B×len(PROMPT_CHANNELS)×H×W, or zeros ("the main object") when it is None."""
    from liwi.model.config import PROMPT_CHANNELS

    b, c, h, w = image.shape
    if c != 3:
        raise ValueError(f"image must be B×3×H×W, got {tuple(image.shape)}")
    want = (b, len(PROMPT_CHANNELS), h, w)
    if prompt is None:
        return image.new_zeros(want)
    if tuple(prompt.shape) != want:
        raise ValueError(f"prompt must be {want}, got {tuple(prompt.shape)}")
    return prompt
