"""Public benchmarks → our layer tables, so the paper's evaluations run on them.

* **Crello** (``cyberagent/crello`` on the Hugging Face Hub, Parquet parts): one row per
  design with a canvas size and per-element sequences (``left``, ``top``, ``width``,
  ``height``, ``angle``, ``opacity``, ``image`` = each element pre-rendered as a PNG,
  stored as ``{bytes, path}`` structs). Elements are rendered onto the canvas back to
  front; the first becomes the (opaque) background, the rest object layers (no shadows),
  as LayerD / Qwen-Image-Layered score Crello. Geometry in pixels (v4+) or normalised to
  [0, 1] (older releases) is detected per design.
* **DIS-5K** (``<split>/im/*.jpg`` + ``<split>/gt/*.png``): the image and a binary
  foreground mask. Only the mask is ground truth, so rows carry ``scores["mask_only"] = 1``
  and the evaluator uses them for foreground segmentation only.

Both write schema-v2 tables with :func:`liwi.table.write_table`; bad inputs are reported
(and skipped), never silently fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liwi.layers import LayerStack, ObjectLayer

CRELLO_COLUMNS = ("id", "canvas_width", "canvas_height", "left", "top", "width", "height")
MIN_CANVAS_PX = 16  # smaller "canvas sizes" are class indices (old releases): unusable
MASK_ONLY = "mask_only"


@dataclass
class ConversionSummary:
    """What a conversion wrote and what it skipped (with reasons)."""

    rows: int = 0
    parts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "parts": self.parts, "skipped": self.skipped}


def _fit(h: int, w: int, max_side: int | None) -> float:
    return 1.0 if not max_side or max(h, w) <= max_side else max_side / max(h, w)


def _resize(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    if arr.shape[1] == w and arr.shape[0] == h:
        return arr
    interp = cv2.INTER_AREA if w < arr.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(arr, (w, h), interpolation=interp)


# -- Crello -------------------------------------------------------------------------------
def _element_bytes(image: Any) -> bytes | None:
    """PNG bytes of one element (a Hub ``Image`` struct, raw bytes, or None)."""
    if image is None:
        return None
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    if isinstance(image, dict):
        return image.get("bytes")
    return None


def _place(canvas_hw: tuple[int, int], rgba: np.ndarray, box: tuple[float, ...], angle: float):
    """``rgba`` resized to the box, rotated by ``angle`` degrees about its centre, on a canvas."""
    import cv2

    h, w = canvas_hw
    left, top, bw, bh = box
    ew, eh = max(1, round(bw)), max(1, round(bh))
    elem = _resize(rgba, ew, eh)
    premult = np.concatenate([elem[..., :3] * elem[..., 3:], elem[..., 3:]], axis=2)
    # affine map: element pixel → canvas pixel (rotation about the element centre)
    cx, cy = left + bw / 2, top + bh / 2
    rot = cv2.getRotationMatrix2D((ew / 2, eh / 2), -angle, 1.0)
    rot[0, 2] += cx - ew / 2
    rot[1, 2] += cy - eh / 2
    out = cv2.warpAffine(
        premult.astype(np.float32), rot, (w, h), flags=cv2.INTER_LINEAR, borderValue=0
    )
    a = np.clip(out[..., 3], 0.0, 1.0)
    rgb = np.where(a[..., None] > 1e-6, out[..., :3] / np.maximum(a[..., None], 1e-6), 0.0)
    return np.clip(rgb, 0, 1).astype(np.float32), a.astype(np.float32)


def crello_stack(design: dict[str, Any], max_side: int | None = 512) -> LayerStack:
    """Render one Crello design (a row of its Parquet) as a :class:`LayerStack`."""
    from liwi.imageio import decode_rgba

    cw, ch = int(design["canvas_width"]), int(design["canvas_height"])
    if min(cw, ch) < MIN_CANVAS_PX:
        raise ValueError(
            f"canvas {cw}×{ch} looks like a class index (old Crello release); use Crello ≥ v4"
        )
    n = len(design["left"])
    if not n:
        raise ValueError("design has no elements")
    geom = [design[k] for k in ("left", "top", "width", "height")]
    normalised = max(max(abs(float(v)) for v in g) for g in geom) <= 1.5
    f = _fit(ch, cw, max_side)
    h, w = max(1, round(ch * f)), max(1, round(cw * f))
    sx, sy = (w, h) if normalised else (f * 1.0, f * 1.0)
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    for i in range(n):
        data = _element_bytes(design["image"][i])
        if not data:
            continue
        rgba = decode_rgba(data)
        opacity = float(design["opacity"][i]) if design.get("opacity") else 1.0
        angle = float(design["angle"][i]) if design.get("angle") else 0.0
        box = (
            float(design["left"][i]) * sx,
            float(design["top"][i]) * sy,
            float(design["width"][i]) * sx,
            float(design["height"][i]) * sy,
        )
        rgb, a = _place((h, w), rgba, box, angle)
        a = a * float(np.clip(opacity, 0.0, 1.0))
        if a.max() > 1e-3:
            layers.append((rgb, a))
    if not layers:
        raise ValueError("no element has visible pixels on the canvas")
    rgb0, a0 = layers[0]
    background = a0[..., None] * rgb0 + (1 - a0[..., None]) * 1.0  # over white
    objects = [ObjectLayer.from_maps(rgb, a, None, label="element") for rgb, a in layers[1:]]
    return LayerStack(background=background.astype(np.float32), objects=objects)


def iter_crello_designs(source: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of the Crello Parquet file(s) at ``source`` (a file or a folder of parts)."""
    import pyarrow.parquet as pq

    src = Path(source)
    files = sorted(src.rglob("*.parquet")) if src.is_dir() else [src]
    if not files:
        raise FileNotFoundError(f"no Parquet files under {src}")
    for path in files:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        missing = [c for c in (*CRELLO_COLUMNS, "image") if c not in names]
        if missing:
            raise ValueError(f"{path} is not a Crello Parquet part: missing columns {missing}")
        cols = [
            c for c in pf.schema_arrow.names if c in {*CRELLO_COLUMNS, "image", "opacity", "angle"}
        ]
        for batch in pf.iter_batches(batch_size=16, columns=cols):
            yield from batch.to_pylist()


# -- DIS-5K -------------------------------------------------------------------------------
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def dis_pairs(source: str | Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """``(image, mask)`` pairs of a DIS-5K split folder (``im/`` + ``gt/``); unmatched names."""
    src = Path(source)
    im_dir, gt_dir = src / "im", src / "gt"
    if not im_dir.is_dir() or not gt_dir.is_dir():
        raise FileNotFoundError(f"{src} is not a DIS-5K split folder (needs im/ and gt/)")
    masks = {p.stem: p for p in gt_dir.iterdir() if p.suffix.lower() == ".png"}
    pairs, unmatched = [], []
    for p in sorted(im_dir.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if p.stem in masks:
            pairs.append((p, masks[p.stem]))
        else:
            unmatched.append(f"{p.name}: no gt/{p.stem}.png")
    return pairs, unmatched


def dis_stack(image_bytes: bytes, mask_bytes: bytes, max_side: int | None = 1024) -> LayerStack:
    """Image + binary mask → a 2-layer stack (background = image; only the alpha is truth)."""
    from liwi.imageio import decode_grey, decode_rgb

    image = decode_rgb(image_bytes)
    mask = decode_grey(mask_bytes)
    if mask.shape[:2] != image.shape[:2]:
        raise ValueError(f"mask {mask.shape[:2]} and image {image.shape[:2]} differ in size")
    h, w = image.shape[:2]
    f = _fit(h, w, max_side)
    if f != 1.0:
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        image, mask = _resize(image, nw, nh), _resize(mask, nw, nh)
    alpha = (mask > 0.5).astype(np.float32)
    obj = ObjectLayer.from_maps(image, alpha, None, label="foreground")
    return LayerStack(background=image, objects=[obj])


# -- writing ------------------------------------------------------------------------------
def _write(rows: list[dict[str, Any]], out: str, name: str, summary: ConversionSummary) -> None:
    from liwi.table import write_table

    if rows:
        summary.parts.append(write_table(rows, out, name=name))
        summary.rows += len(rows)


def convert_crello(
    source: str | Path,
    out: str,
    split: str = "test",
    max_side: int | None = 512,
    limit: int | None = None,
    rows_per_part: int = 256,
) -> ConversionSummary:
    """Crello Parquet part(s) → a layer table at ``out`` (lake URI)."""
    from liwi.imageio import encode_png
    from liwi.schema import sample_id_for, stack_to_row

    summary = ConversionSummary()
    rows: list[dict[str, Any]] = []
    part = 0
    for design in iter_crello_designs(source):
        if limit is not None and summary.rows + len(rows) >= limit:
            break
        did = str(design["id"])
        try:
            stack = crello_stack(design, max_side=max_side)
        except (ValueError, OSError) as exc:
            summary.skipped.append(f"{did}: {exc}")
            continue
        image = encode_png(stack.composite())
        rows.append(
            stack_to_row(
                stack,
                sample_id=sample_id_for(b"crello:" + did.encode()),
                source_uri=f"crello:{did}",
                image=image,
                split=split,
                scores={"crello_elements": float(len(stack.objects) + 1)},
            )
        )
        if len(rows) >= rows_per_part:
            _write(rows, out, f"crello-{part:05d}", summary)
            rows, part = [], part + 1
    _write(rows, out, f"crello-{part:05d}", summary)
    return summary


def convert_dis5k(
    source: str | Path,
    out: str,
    split: str = "test",
    max_side: int | None = 1024,
    limit: int | None = None,
    rows_per_part: int = 256,
) -> ConversionSummary:
    """A DIS-5K split folder (``im/`` + ``gt/``) → a mask-only layer table at ``out``."""
    from liwi.imageio import encode_png
    from liwi.schema import sample_id_for, stack_to_row

    pairs, unmatched = dis_pairs(source)
    summary = ConversionSummary(skipped=list(unmatched))
    rows: list[dict[str, Any]] = []
    part = 0
    for im, gt in pairs[:limit] if limit else pairs:
        data = im.read_bytes()
        try:
            stack = dis_stack(data, gt.read_bytes(), max_side=max_side)
        except (ValueError, OSError) as exc:
            summary.skipped.append(f"{im.name}: {exc}")
            continue
        rows.append(
            stack_to_row(
                stack,
                sample_id=sample_id_for(data),
                source_uri=str(im),
                image=encode_png(stack.background),
                split=split,
                scores={MASK_ONLY: 1.0},
            )
        )
        if len(rows) >= rows_per_part:
            _write(rows, out, f"dis5k-{part:05d}", summary)
            rows, part = [], part + 1
    _write(rows, out, f"dis5k-{part:05d}", summary)
    return summary
