"""Peeling problems with the frozen trunk's saliency maps, computed once (model v2 on a CPU).

Fine-tuning :class:`~liwi.model.u2layernet.U2LayerNet` with a frozen trunk needs the
trunk's seven saliency maps per training input, not its gradients; a forward through
U²-Netp costs ≈ 0.3 s on this CPU against ≈ 0.1 s for the heads, so computing it once
per input and reusing it every epoch makes CPU fine-tuning about 4× cheaper.

:func:`build` turns the ``ok`` rows of layer tables into every peeling problem with an
object (levels 1..k of :func:`liwi.training.data.peel_target`), resized to ``size`` ×
``size``, runs the trunk on onnxruntime (the same weights and outputs, within 3e-5, as the
torch trunk), and writes one ``.npy`` per field under a folder (uint8, memory-mappable):

``image``, ``color``, ``background``, ``shadow`` (N×3×S×S), ``alpha`` (N×1×S×S) and
``saliency`` (N×7×S×S), plus ``meta.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

FIELDS = {"image": 3, "alpha": 1, "color": 3, "background": 3, "shadow": 3, "saliency": 7}


def _problems(rows: list[dict], size: int):
    """The PeelTarget (at size × size) of every object level of every row."""
    import cv2

    from liwi.training.data import PeelTarget, decode_row, peel_target

    for row in rows:
        stack, flat = decode_row(row)
        for level in range(1, len(stack.objects) + 1):
            peel = peel_target(stack, level, flat).stacked()
            if peel.shape[:2] != (size, size):
                chans = [
                    cv2.resize(peel[..., c : c + 4], (size, size), interpolation=cv2.INTER_AREA)
                    for c in range(0, peel.shape[2], 4)
                ]
                peel = np.concatenate([c if c.ndim == 3 else c[..., None] for c in chans], 2)
            yield PeelTarget.unstack(peel)


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def build(
    tables: list[str],
    split: str,
    out: str | Path,
    size: int = 320,
    weight: str = "u2netp",
    limit: int | None = None,
    progress: bool = True,
) -> Path:
    """Write the cache of ``split`` under ``out``; returns the folder."""
    import onnxruntime as ort
    from tqdm import tqdm

    from liwi.model.u2layernet import IMAGENET_MEAN, IMAGENET_STD
    from liwi.training.data import rows_from_table
    from liwi.weights import resolve

    rows = rows_from_table(tables, split=split, limit=limit)
    if not rows:
        raise ValueError(f"no ok rows in split {split!r} of {tables}")
    n = sum(len(r["objects"]) for r in rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {
        k: np.lib.format.open_memmap(
            out / f"{k}.npy.partial", mode="w+", dtype=np.uint8, shape=(n, c, size, size)
        )
        for k, c in FIELDS.items()
    }
    sess = ort.InferenceSession(str(resolve(weight)), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    mean = np.array(IMAGENET_MEAN, np.float32)[:, None, None]
    std = np.array(IMAGENET_STD, np.float32)[:, None, None]
    t0 = time.monotonic()
    count = 0
    for p in tqdm(_problems(rows, size), total=n, disable=not progress, desc=split):
        chw = {k: v.transpose(2, 0, 1) for k, v in vars(p).items()}
        x = ((chw["image"] - mean) / std)[None].astype(np.float32)
        chw["saliency"] = np.concatenate(sess.run(None, {name: x}), axis=1)[0]
        for k in FIELDS:
            arrays[k][count] = _u8(chw[k])
        count += 1
    for k, arr in arrays.items():
        arr.flush()
        del arr
        (out / f"{k}.npy.partial").replace(out / f"{k}.npy")
    meta = {
        "tables": tables,
        "split": split,
        "size": size,
        "weight": weight,
        "rows": len(rows),
        "problems": count,
        "seconds": round(time.monotonic() - t0, 1),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return out


def load(folder: str | Path) -> dict[str, Any]:
    """The cache's arrays (memory-mapped uint8) and its ``meta``."""
    folder = Path(folder)
    data: dict[str, Any] = {k: np.load(folder / f"{k}.npy", mmap_mode="r") for k in FIELDS}
    data["meta"] = json.loads((folder / "meta.json").read_text())
    return data
