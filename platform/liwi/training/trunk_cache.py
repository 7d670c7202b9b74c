"""Peeling problems with the frozen trunk's saliency maps, computed once (model v2 on a CPU).

Fine-tuning :class:`~liwi.model.u2layernet.U2LayerNet` with a frozen trunk needs the
trunk's seven saliency maps per training input, not its gradients; a forward through
U²-Netp costs ≈ 0.3 s on this CPU against ≈ 0.1 s for the heads, so computing it once
per input and reusing it every epoch makes CPU fine-tuning about 4× cheaper.

:func:`build` turns the ``ok`` rows of layer tables into every peeling problem with an
object (levels 1..k of :func:`liwi.training.data.peel_target`), resized to ``size`` ×
``size``, runs the trunk on onnxruntime (the same weights and outputs, within 3e-5, as the
torch trunk) — or, on a GPU, the torch trunk itself in batches of :data:`GPU_BATCH` — and
writes one ``.npy`` per field under a folder (uint8, memory-mappable):

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


def _row_problems(row: dict, size: int) -> list:
    """The PeelTarget (at size × size) of every object level of one row."""
    import cv2

    from liwi.training.data import PeelTarget, decode_row, peel_target

    stack, flat = decode_row(row)
    out = []
    for level in range(1, len(stack.objects) + 1):
        peel = peel_target(stack, level, flat).stacked()
        if peel.shape[:2] != (size, size):
            chans = [
                cv2.resize(peel[..., c : c + 4], (size, size), interpolation=cv2.INTER_AREA)
                for c in range(0, peel.shape[2], 4)
            ]
            peel = np.concatenate([c if c.ndim == 3 else c[..., None] for c in chans], 2)
        out.append(PeelTarget.unstack(peel))
    return out


def _problems(rows: list[dict], size: int, workers: int = 1):
    """Every row's problems in order; ``workers`` > 1 decodes rows in that many processes."""
    if workers <= 1:
        for row in rows:
            yield from _row_problems(row, size)
        return
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    with ProcessPoolExecutor(workers) as pool:
        for problems in pool.map(partial(_row_problems, size=size), rows, chunksize=8):
            yield from problems


# Inputs per torch-trunk forward when the cache is built on a GPU (U²-Net at 320²: ≈ 3 GB
# of activations per 64 in float32).
GPU_BATCH = 64


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
    trunk: Any = None,
    workers: int = 1,
) -> Path:
    """Write the cache of ``split`` under ``out``; returns the folder.

    ``trunk``: a torch :class:`~liwi.model.u2layernet.U2Trunk` (on any device) to run
    instead of onnxruntime on the registered ``weight``'s file; ``workers``: processes
    that decode the rows (PNG decoding and peeling, ≈ 30 ms a row, is the slow part beside
    a GPU).
    """
    from tqdm import tqdm

    from liwi.priors.salient import SalientPrior
    from liwi.training.data import rows_from_table

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
    prior = SalientPrior(weight, trunk=trunk)  # onnxruntime on the weight's file, or `trunk`
    t0 = time.monotonic()
    count = 0
    pending: list[dict[str, np.ndarray]] = []

    def flush() -> None:
        nonlocal count
        sal = prior.batch_maps(np.stack([c["image"] for c in pending]))
        for chw, s in zip(pending, sal, strict=True):
            chw["saliency"] = s
            for k in FIELDS:
                arrays[k][count] = _u8(chw[k])
            count += 1
        pending.clear()

    batch = GPU_BATCH if trunk is not None else 1
    for p in tqdm(_problems(rows, size, workers), total=n, disable=not progress, desc=split):
        pending.append({k: v.transpose(2, 0, 1) for k, v in vars(p).items()})
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
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
