"""Shadow metrics: attenuation L1, shadow-region IoU (with its precision and recall), and
background L1 inside the shadow."""

from __future__ import annotations

import numpy as np

# A pixel is "in shadow" when its (channel-mean) attenuation is below this.
SHADOW_THRESHOLD = 0.9
# What shadow_metrics answers per image, in report order.
SHADOW_KEYS = (
    "attenuation_l1",
    "shadow_iou",
    "shadow_precision",
    "shadow_recall",
    "background_l1_shadow",
)


def _grey(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, np.float32)
    return s.mean(axis=2) if s.ndim == 3 else s


def shadow_region(attenuation: np.ndarray, threshold: float = SHADOW_THRESHOLD) -> np.ndarray:
    """Boolean H×W mask of pixels whose attenuation is below ``threshold``."""
    return _grey(attenuation) < threshold


def attenuation_l1(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean |S − Ŝ| over all pixels (grey attenuation)."""
    return float(np.abs(_grey(pred) - _grey(gt)).mean())


def shadow_iou(pred: np.ndarray, gt: np.ndarray, threshold: float = SHADOW_THRESHOLD) -> float:
    """IoU of the shadow regions (S < threshold); 1 when neither has a shadow."""
    p, g = shadow_region(pred, threshold), shadow_region(gt, threshold)
    union = (p | g).sum()
    return 1.0 if union == 0 else float((p & g).sum() / union)


def shadow_precision_recall(
    pred: np.ndarray, gt: np.ndarray, threshold: float = SHADOW_THRESHOLD
) -> tuple[float, float]:
    """Share of the predicted shadow region that is true shadow, and of the true shadow
    region that was predicted; NaN when the region it divides by is empty. They tell
    which way an IoU falls short: shadows invented, or shadows missed."""
    p, g = shadow_region(pred, threshold), shadow_region(gt, threshold)
    hit = float((p & g).sum())
    precision = hit / p.sum() if p.any() else float("nan")
    recall = hit / g.sum() if g.any() else float("nan")
    return precision, recall


def background_l1_in_shadow(
    pred_bg: np.ndarray,
    gt_bg: np.ndarray,
    gt_attenuation: np.ndarray,
    threshold: float = SHADOW_THRESHOLD,
) -> float:
    """Mean |B − B̂| over the ground-truth shadow region; NaN when there is none."""
    region = shadow_region(gt_attenuation, threshold)
    if not region.any():
        return float("nan")
    return float(np.abs(np.asarray(pred_bg) - np.asarray(gt_bg))[region].mean())


def shadow_metrics(
    pred_attenuation: np.ndarray,
    gt_attenuation: np.ndarray,
    pred_background: np.ndarray,
    gt_background: np.ndarray,
    threshold: float = SHADOW_THRESHOLD,
) -> dict[str, float]:
    """Every shadow metric for one image (total attenuation maps, H×W or H×W×3)."""
    precision, recall = shadow_precision_recall(pred_attenuation, gt_attenuation, threshold)
    return {
        "attenuation_l1": attenuation_l1(pred_attenuation, gt_attenuation),
        "shadow_iou": shadow_iou(pred_attenuation, gt_attenuation, threshold),
        "shadow_precision": precision,
        "shadow_recall": recall,
        "background_l1_shadow": background_l1_in_shadow(
            pred_background, gt_background, gt_attenuation, threshold
        ),
    }
