"""Cropped 8-bit layers: the form every export (ZIP, PSD, the API's JSON) encodes.

Each layer is kept as the smallest box holding its visible pixels plus that box's offset
``(x, y)`` on the canvas, as PSD layers are: most of a full-size object layer is
transparent, and encoding it is most of an answer's cost. Per kind:

* background — RGB, full size, once;
* object — RGBA (straight alpha), cropped to ``alpha > 0`` in 8 bit;
* shadow — cropped to where it darkens (8-bit attenuation ``S < 255``); a grey shadow
  (the three channels of ``S`` equal in 8 bit) is stored as one grey channel holding ``S``
  itself (mode ``L``: 255 = no shadow; a multiply layer of that grey is exactly
  ``C ⊙ S``), a coloured one as its RGBA multiply layer.

Every format is 8-bit, so quantising here loses nothing a client sees; outside its box a
layer is transparent (or ``S = 1``), so the crop is lossless in 8 bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from liwi.layers import (
    BlendMode,
    Layer,
    LayerKind,
    LayerStack,
    ObjectLayer,
    shadow_from_attenuation,
)

PixelMode = Literal["RGB", "RGBA", "L"]

VISIBLE_ALPHA = 0.5 / 255  # the smallest float alpha that is not 0 once rounded to 8 bit


def _u8(arr: np.ndarray) -> np.ndarray:
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass
class PackedLayer:
    """One layer as stored: uint8 pixels of its box and the box's canvas offset."""

    name: str
    kind: LayerKind
    blend: BlendMode
    object_index: int | None
    x: int  # left of the box on the canvas, px
    y: int  # top of the box on the canvas, px
    pixels: np.ndarray  # uint8: h×w×3 (RGB), h×w×4 (RGBA) or h×w (L: shadow attenuation)

    @property
    def mode(self) -> PixelMode:
        return "L" if self.pixels.ndim == 2 else ("RGB" if self.pixels.shape[2] == 3 else "RGBA")

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def entry(self) -> dict[str, Any]:
        """The layer's manifest entry (``layers.json``, the API's JSON)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "blend": self.blend,
            "object_index": self.object_index,
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
        }

    def rgba(self, width: int, height: int) -> np.ndarray:
        """The full-size float32 H×W×4 straight-alpha layer (transparent outside the box)."""
        out = np.zeros((height, width, 4), np.float32)
        px = self.pixels.astype(np.float32) / 255.0
        if self.mode == "L":
            px = shadow_from_attenuation(px)
        elif self.mode == "RGB":
            px = np.concatenate([px, np.ones(px.shape[:2] + (1,), np.float32)], axis=2)
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.x + self.width, width), min(self.y + self.height, height)
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = px[y0 - self.y : y1 - self.y, x0 - self.x : x1 - self.x]
        return out


@dataclass
class PackedStack:
    """A :class:`LayerStack` as cropped 8-bit layers plus its manifest (picklable, small)."""

    width: int
    height: int
    layers: list[PackedLayer]
    manifest: dict[str, Any] = field(default_factory=dict)  # per-layer entries hold the boxes


def crop_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` (exclusive) of the True pixels; an empty mask gives one pixel."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return (0, 0, 1, 1)
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def pack_layer(layer: Layer) -> PackedLayer:
    """One flattened layer → its cropped 8-bit form.

    Only the box is quantised: a pixel is visible in 8 bit exactly when its float alpha is
    ≥ 0.5/255 (``_u8`` rounds), so the float box holds every visible 8-bit pixel.
    """
    if layer.kind == "background":
        return PackedLayer(
            layer.name, layer.kind, layer.blend, layer.object_index, 0, 0, _u8(layer.rgba[..., :3])
        )
    x0, y0, x1, y1 = crop_box(layer.rgba[..., 3] >= VISIBLE_ALPHA)
    box = (slice(y0, y1), slice(x0, x1))
    if layer.kind == "shadow":
        s8 = _u8(_attenuation(layer.rgba[box]))  # S = 1 − a + a·rgb of the multiply layer
        if (s8[..., 0] == s8[..., 1]).all() and (s8[..., 0] == s8[..., 2]).all():
            pixels, visible = s8[..., 0], s8[..., 0] < 255
        else:
            pixels = _u8(layer.rgba[box])
            visible = pixels[..., 3] > 0
    else:
        pixels = _u8(layer.rgba[box])
        visible = pixels[..., 3] > 0
    bx0, by0, bx1, by1 = crop_box(visible)  # tight in 8 bit, within the float box
    pixels = np.ascontiguousarray(pixels[by0:by1, bx0:bx1])
    if not visible.any():  # an empty layer: one neutral pixel (PNG has no 0×0 image)
        pixels = np.full_like(pixels, 255) if pixels.ndim == 2 else np.zeros_like(pixels)
    return PackedLayer(
        layer.name, layer.kind, layer.blend, layer.object_index, x0 + bx0, y0 + by0, pixels
    )


def _attenuation(rgba: np.ndarray) -> np.ndarray:
    a = rgba[..., 3:4]
    return 1.0 - a + a * rgba[..., :3]


def pack(stack: LayerStack) -> PackedStack:
    """The stack's layers, back to front, cropped and 8-bit, with its manifest."""
    layers = [pack_layer(layer) for layer in stack.layers()]
    manifest = stack.manifest()
    manifest["layers"] = [p.entry() for p in layers]
    h, w = stack.size
    return PackedStack(width=w, height=h, layers=layers, manifest=manifest)


def unpack(packed: PackedStack) -> LayerStack:
    """The full-size float32 :class:`LayerStack` back (equal to :func:`pack`'s input in 8 bit)."""
    w, h = packed.width, packed.height
    background = None
    rgba: dict[int, np.ndarray] = {}
    shadows: dict[int, np.ndarray] = {}
    for layer in packed.layers:
        if layer.kind == "background":
            background = layer.rgba(w, h)[..., :3]
        elif layer.kind == "object":
            rgba[int(layer.object_index)] = layer.rgba(w, h)
        else:
            shadows[int(layer.object_index)] = layer.rgba(w, h)
    if background is None:
        raise ValueError("a packed stack needs a background layer")
    info = packed.manifest.get("objects", [])
    objects = []
    for i in sorted(rgba):
        meta = info[i] if i < len(info) else {}
        objects.append(
            ObjectLayer(
                rgba=rgba[i],
                shadow=shadows.get(i, np.zeros_like(rgba[i])),
                label=meta.get("label", "object"),
                scores=dict(meta.get("scores", {})),
            )
        )
    return LayerStack(
        background=background, objects=objects, meta=dict(packed.manifest.get("meta", {}))
    )
