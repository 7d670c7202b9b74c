"""Recombination across images: new layered samples whose layers are exact by construction.

A curated object (colour + alpha) and its shadow (attenuation) taken from one photo are
placed on a curated clean background from another photo. The flat image is *defined* as
the composite of the new stack, so the layers explain it exactly (up to 8-bit rounding
when written as PNG). The object keeps its relative size and position in the frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liwi.layers import LayerStack, ObjectLayer, shadow_from_attenuation
from liwi.schema import row_to_stack, sample_id_for, stack_to_row


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize H×W×C float32 to (h, w) with area averaging when shrinking."""
    import cv2

    h, w = size
    interp = cv2.INTER_AREA if w * h < arr.shape[0] * arr.shape[1] else cv2.INTER_LINEAR
    out = cv2.resize(arr, (w, h), interpolation=interp)
    return out if out.ndim == 3 else out[..., None]


def _shift(arr: np.ndarray, size: tuple[int, int], dx: int, dy: int, fill: float) -> np.ndarray:
    """Paste ``arr`` at offset (dx, dy) into a new ``size`` canvas filled with ``fill``."""
    h, w = size
    out = np.full((h, w, arr.shape[2]), fill, np.float32)
    sh, sw = arr.shape[:2]
    x0, y0 = max(0, dx), max(0, dy)
    x1, y1 = min(w, dx + sw), min(h, dy + sh)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = arr[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
    return out


def place_object(
    obj: ObjectLayer, size: tuple[int, int], jitter: tuple[float, float] = (0.0, 0.0)
) -> ObjectLayer:
    """``obj`` (and its shadow) scaled to an image of ``size`` = (h, w), same relative place.

    The layer is resized so the object keeps its size relative to the frame height; the
    aspect ratio is kept (the source width is cropped or padded, centred on the object).
    ``jitter`` moves it by a fraction of the frame (x, y).
    """
    sh, sw = obj.rgba.shape[:2]
    h, w = size
    scale = h / sh
    nh, nw = h, max(1, round(sw * scale))
    alpha = obj.alpha[..., None]
    premult = np.concatenate([obj.rgba[..., :3] * alpha, alpha], axis=2)
    premult = _resize(premult, (nh, nw))
    att = _resize(obj.attenuation, (nh, nw))
    x0, _, x1, _ = obj.bbox
    cx_rel = (x0 + x1) / 2 / sw if x1 > x0 else 0.5
    dx = round(w * (cx_rel + jitter[0]) - cx_rel * nw)
    dy = round(h * jitter[1])
    premult = _shift(premult, size, dx, dy, 0.0)
    att = _shift(att, size, dx, dy, 1.0)
    a = np.clip(premult[..., 3], 0.0, 1.0)
    rgb = np.where(a[..., None] > 1e-4, premult[..., :3] / np.maximum(a[..., None], 1e-4), 0.0)
    rgba = np.concatenate([np.clip(rgb, 0, 1), a[..., None]], axis=2).astype(np.float32)
    return ObjectLayer(
        rgba=rgba,
        shadow=shadow_from_attenuation(np.clip(att, 0, 1)),
        label=obj.label,
        scores={},
    )


def recombine(
    foreground: LayerStack,
    background: LayerStack,
    objects: list[int] | None = None,
    jitter: tuple[float, float] = (0.0, 0.0),
    meta: dict[str, Any] | None = None,
) -> LayerStack:
    """Objects ``objects`` (default all) of ``foreground`` over ``background``'s clean plate."""
    idx = range(len(foreground.objects)) if objects is None else objects
    placed = [place_object(foreground.objects[i], background.size, jitter) for i in idx]
    return LayerStack(
        background=background.background.copy(), objects=placed, meta=dict(meta or {})
    )


def recombine_rows(
    fg_rows: list[dict[str, Any]],
    bg_rows: list[dict[str, Any]],
    n: int,
    seed: int = 0,
    max_jitter: float = 0.15,
) -> list[dict[str, Any]]:
    """``n`` new schema-v2 rows: random (foreground row, background row) pairs from curated rows.

    Pairs use different source samples; the flat ``image`` is the PNG of the composite, so
    the layers are exact by construction. ``agent_trace`` records both sources.
    """
    rng = np.random.default_rng(seed)
    fgs = [r for r in fg_rows if r["status"] == "ok" and r["objects"]]
    bgs = [r for r in bg_rows if r["status"] == "ok" and r["background"] is not None]
    if not fgs or not bgs:
        return []
    out = []
    for _ in range(n):
        fg = fgs[rng.integers(len(fgs))]
        candidates = [r for r in bgs if r["sample_id"] != fg["sample_id"]] or bgs
        bg = candidates[rng.integers(len(candidates))]
        jitter = (
            float(rng.uniform(-max_jitter, max_jitter)),
            float(rng.uniform(0, max_jitter / 2)),
        )
        stack = recombine(row_to_stack(fg), row_to_stack(bg), jitter=jitter)
        trace = [
            {
                "tool": "recombine",
                "params": {
                    "foreground": fg["sample_id"],
                    "background": bg["sample_id"],
                    "jitter": [round(j, 4) for j in jitter],
                },
                "outcome": "ok",
            }
        ]
        key = f"recombine:{fg['sample_id']}:{bg['sample_id']}:{jitter}".encode()
        out.append(
            stack_to_row(
                stack,
                sample_id=sample_id_for(key),
                source_uri=f"recombined:{fg['source_uri']}|{bg['source_uri']}",
                scores={"exact": 1.0},
                agent_trace=trace,
            )
        )
    return out
