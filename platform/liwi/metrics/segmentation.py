"""Zero-shot foreground segmentation metrics, DIS-5K style, computed by ``pysodmetrics``.

We do not re-implement these: :func:`fg_segmentation_metrics` feeds uint8 maps to the
library's ``Fmeasure`` (maxFβ, β² = 0.3), ``WeightedFmeasure``, ``MAE``, ``Smeasure``,
``Emeasure`` (max and mean) and ``HumanCorrectionEffortMeasure`` (HCE, the DIS paper's
measure of how many clicks a human needs to fix the mask; lower is better). Beside them,
the mean per-image soft IoU of the soft maps (Σ min / Σ max, no binarisation): the
"alpha soft IoU of the union foreground" the held-out rendered scenes are scored with.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def _u8(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def fg_segmentation_metrics(
    preds: Iterable[np.ndarray], gts: Iterable[np.ndarray], hce: bool = True
) -> dict[str, float]:
    """Dataset-level scores for predicted alpha maps vs ground-truth masks (H×W each).

    Predictions are float in [0, 1] or uint8; ground truths bool, float or uint8
    (binarised at 128 by the library).
    """
    import py_sod_metrics as sod

    from liwi.metrics.layers import map_soft_iou

    fm, wfm, mae, sm, em = (
        sod.Fmeasure(),
        sod.WeightedFmeasure(),
        sod.MAE(),
        sod.Smeasure(),
        sod.Emeasure(),
    )
    hce_m = sod.HumanCorrectionEffortMeasure() if hce else None
    n, soft = 0, []
    for pred, gt in zip(preds, gts, strict=True):
        p, g = _u8(pred), _u8(gt)
        if p.shape != g.shape:
            raise ValueError(f"prediction {p.shape} and ground truth {g.shape} differ in size")
        soft.append(map_soft_iou(p.astype(np.float32), g.astype(np.float32)))
        for m in (fm, wfm, mae, sm, em):
            m.step(pred=p, gt=g)
        if hce_m is not None:
            hce_m.step(pred=p, gt=g)
        n += 1
    if n == 0:
        raise ValueError("no prediction/ground-truth pairs")
    em_res = em.get_results()["em"]
    out = {
        "soft_iou": float(np.mean(soft)),
        "max_f": float(np.max(fm.get_results()["fm"]["curve"])),
        "weighted_f": float(wfm.get_results()["wfm"]),
        "mae": float(mae.get_results()["mae"]),
        "s_measure": float(sm.get_results()["sm"]),
        "max_e": float(np.max(em_res["curve"])),
        "mean_e": float(np.mean(em_res["curve"])),
        "count": float(n),
    }
    if hce_m is not None:
        out["hce"] = float(hce_m.get_results()["hce"])
    return out
