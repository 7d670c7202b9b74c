"""A packed layer stack → response body (JSON with base64 PNGs, ZIP, PSD).

Layers arrive cropped and 8-bit (:mod:`liwi.layer_pack`); their PNGs are encoded in
parallel on a thread pool (Pillow releases the GIL while compressing), in the ingress,
so the model replica's batch never waits for encoding. The recomposed image is made only
when the request asks for it (``composite``).
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from liwi.imageio import encode_png
from liwi.layer_export import layer_filename, to_psd, to_zip
from liwi.layer_pack import PackedStack, unpack
from liwi.serving.schemas import MEDIA_TYPES, ResponseFormat

# Threads that encode PNGs in one ingress replica (shared by its requests); zlib runs
# without the GIL, so they use the replica's cores.
ENCODE_THREADS = 4

_pool: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    """The ingress's PNG encoding pool (created on first use: no import-time threads)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="liwi-encode")
    return _pool


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def stack_to_json(
    packed: PackedStack, model: dict[str, Any], composite: bool = False
) -> dict[str, Any]:
    """The ``format=json`` body: cropped layers back to front (each with its box and
    pixel mode), the manifest, and the recomposed image only if ``composite``."""
    images = [layer.pixels for layer in packed.layers]
    if composite:
        images.append(unpack(packed).composite())
    pngs = list(pool().map(encode_png, images))
    layers = [
        {**layer.entry(), "file": layer_filename(i, layer.name), "png": b64(png)}
        for i, (layer, png) in enumerate(zip(packed.layers, pngs, strict=False))
    ]
    return {
        "model": model,
        "width": packed.width,
        "height": packed.height,
        "n_layers": packed.manifest.get("n_layers", 1 + len(packed.manifest.get("objects", []))),
        "layers": layers,
        "composite": b64(pngs[-1]) if composite else None,
        "manifest": packed.manifest,
    }


def encode_stack(
    packed: PackedStack, fmt: ResponseFormat, composite: bool = False
) -> tuple[bytes, str, str]:
    """ZIP or PSD bytes, their media type and a download file name."""
    if fmt == "zip":
        summaries = ("recomposed",) if composite else ()
        return to_zip(packed, summaries, pool().map), MEDIA_TYPES["zip"], "layers.zip"
    if fmt == "psd":
        return to_psd(packed), MEDIA_TYPES["psd"], "layers.psd"
    raise ValueError(f"encode_stack handles zip and psd, not {fmt!r}")
