"""A :class:`~liwi.layers.LayerStack` → response body (JSON with base64 PNGs, ZIP, PSD)."""

from __future__ import annotations

import base64
from typing import Any

from liwi.imageio import encode_png
from liwi.layer_export import to_psd, to_zip
from liwi.layers import LayerStack
from liwi.serving.schemas import MEDIA_TYPES, ResponseFormat


def b64png(arr) -> str:
    return base64.b64encode(encode_png(arr)).decode("ascii")


def stack_to_json(stack: LayerStack, model: dict[str, Any]) -> dict[str, Any]:
    """The ``format=json`` body: layers back to front, the composite and the manifest."""
    h, w = stack.size
    layers = [
        {
            "name": layer.name,
            "kind": layer.kind,
            "blend": layer.blend,
            "object_index": layer.object_index,
            "png": b64png(layer.rgba[..., :3] if layer.kind == "background" else layer.rgba),
        }
        for layer in stack.layers()
    ]
    return {
        "model": model,
        "width": w,
        "height": h,
        "n_layers": stack.n_layers,
        "layers": layers,
        "composite": b64png(stack.composite()),
        "manifest": stack.manifest(),
    }


def encode_stack(stack: LayerStack, fmt: ResponseFormat) -> tuple[bytes, str, str | None]:
    """ZIP or PSD bytes, their media type and a download file name."""
    if fmt == "zip":
        return to_zip(stack), MEDIA_TYPES["zip"], "layers.zip"
    if fmt == "psd":
        return to_psd(stack), MEDIA_TYPES["psd"], "layers.psd"
    raise ValueError(f"encode_stack handles zip and psd, not {fmt!r}")
