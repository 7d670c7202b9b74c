"""Layer-decomposition metrics: the LayerD / Qwen-Image-Layered protocol.

Layers are straight-alpha RGBA arrays (H×W×4 float in [0, 1]), back to front.

1. **Grouping** — consecutive layers that do not overlap each other (their alphas never
   both exceed 0 on one pixel) have no defined order, so each run of mutually
   non-overlapping layers is alpha-composited into one layer (both sides).
2. **Alignment** — an order-aware dynamic time warping (DTW) aligns the predicted and
   ground-truth sequences (monotone, every layer matched at least once) with pair cost
   ``(RGB L1 + (1 − soft IoU)) / 2``; scores are means over the matched pairs.
3. **Merges** — up to ``max_merges`` (5) greedy merges of two adjacent layers, on either
   side, each the one that lowers the DTW cost most; a merge that does not lower it is not
   taken, so scores after m merges are "with at most m merges". Result index m holds
   the scores after m merges.

``rgb_l1`` is mean |Δ| of straight RGB over pixels where ground-truth alpha > 0;
``soft_iou`` is Σ min(α, α̂) / Σ max(α, α̂).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Alpha above which a pixel "belongs" to a layer (for grouping and the RGB L1 support).
ALPHA_EPS = 1e-3


def rgb_l1(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean |Δ| of straight RGB over pixels where ground-truth alpha > 0 (0 if none)."""
    support = gt[..., 3] > ALPHA_EPS
    if not support.any():
        return 0.0
    return float(np.abs(pred[..., :3] - gt[..., :3])[support].mean())


def soft_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Σ min(α, α̂) / Σ max(α, α̂) of two RGBA layers (1 when both are empty)."""
    return map_soft_iou(pred[..., 3], gt[..., 3])


def map_soft_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Σ min / Σ max of two non-negative maps of one size (1 when both are empty)."""
    den = float(np.maximum(a, b).sum())
    if den == 0.0:
        return 1.0
    return float(np.minimum(a, b).sum()) / den


def alpha_over(bottom: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Straight-alpha RGBA ``top`` over ``bottom`` (both H×W×4) → straight RGBA."""
    at, ab = top[..., 3:4], bottom[..., 3:4]
    a = at + ab * (1.0 - at)
    premult = top[..., :3] * at + bottom[..., :3] * ab * (1.0 - at)
    rgb = np.where(a > 0, premult / np.maximum(a, 1e-12), 0.0)
    return np.concatenate([rgb, a], axis=2).astype(np.float32)


def merge_layers(layers: list[np.ndarray]) -> np.ndarray:
    """Composite a back-to-front list of RGBA layers into one."""
    out = layers[0]
    for layer in layers[1:]:
        out = alpha_over(out, layer)
    return out


def group_non_overlapping(layers: list[np.ndarray]) -> list[list[int]]:
    """Indices of runs of consecutive, mutually non-overlapping layers (back to front)."""
    groups: list[list[int]] = []
    current: list[int] = []
    union = None
    for i, layer in enumerate(layers):
        solid = layer[..., 3] > ALPHA_EPS
        if current and not (union & solid).any():
            current.append(i)
            union |= solid
        else:
            if current:
                groups.append(current)
            current, union = [i], solid.copy()
    if current:
        groups.append(current)
    return groups


def grouped(layers: list[np.ndarray]) -> list[np.ndarray]:
    """The layers with each non-overlapping run merged into one."""
    return [merge_layers([layers[i] for i in g]) for g in group_non_overlapping(layers)]


def dtw(cost: np.ndarray) -> list[tuple[int, int]]:
    """Order-aware DTW path (monotone, each row and column used) minimising the summed cost."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    path = []
    i, j = n, m
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        steps = {
            (i - 1, j - 1): acc[i - 1, j - 1],
            (i - 1, j): acc[i - 1, j],
            (i, j - 1): acc[i, j - 1],
        }
        i, j = min(steps, key=lambda k: (steps[k], -(k[0] + k[1])))  # prefer the diagonal on ties
    return path[::-1]


def align(pred: list[np.ndarray], gt: list[np.ndarray]) -> dict[str, Any]:
    """DTW-align two layer sequences; mean RGB L1, soft IoU and cost over matched pairs."""
    l1 = np.array([[rgb_l1(p, g) for g in gt] for p in pred])
    iou = np.array([[soft_iou(p, g) for g in gt] for p in pred])
    cost = 0.5 * (l1 + 1.0 - iou)
    path = dtw(cost)
    return {
        "rgb_l1": float(np.mean([l1[i, j] for i, j in path])),
        "alpha_soft_iou": float(np.mean([iou[i, j] for i, j in path])),
        "cost": float(np.mean([cost[i, j] for i, j in path])),
        "pairs": path,
        "n_pred": len(pred),
        "n_gt": len(gt),
    }


def _merge_at(layers: list[np.ndarray], k: int) -> list[np.ndarray]:
    return layers[:k] + [alpha_over(layers[k], layers[k + 1])] + layers[k + 2 :]


def evaluate_layers(
    pred: list[np.ndarray], gt: list[np.ndarray], max_merges: int = 5
) -> list[dict[str, Any]]:
    """Scores after 0, 1, …, ``max_merges`` greedy merges (index = number of merges)."""
    if not pred or not gt:
        raise ValueError("both layer sequences need at least one layer")
    pred, gt = grouped(pred), grouped(gt)
    best = align(pred, gt)
    results = [{"merges": 0, **best}]
    for m in range(1, max_merges + 1):
        candidates = []
        for side in ("pred", "gt"):
            seq = pred if side == "pred" else gt
            for k in range(len(seq) - 1):
                new = _merge_at(seq, k)
                res = align(new, gt) if side == "pred" else align(pred, new)
                candidates.append((res["cost"], side, new, res))
        if candidates:
            cost, side, new, res = min(candidates, key=lambda c: c[0])
            if cost < best["cost"] - 1e-12:
                if side == "pred":
                    pred = new
                else:
                    gt = new
                best = res
        results.append({"merges": m, **best})
    return results


def stack_eval_layers(stack) -> list[np.ndarray]:
    """The RGBA sequence a :class:`~liwi.layers.LayerStack` is scored on: background, objects.

    Shadows are scored separately (:mod:`liwi.metrics.shadow`), as LiWi counts layers.
    """
    h, w = stack.size
    bg = np.concatenate([stack.background, np.ones((h, w, 1), np.float32)], axis=2)
    return [bg] + [obj.rgba for obj in stack.objects]


def decomposition_scores(results: list[list[dict[str, Any]]]) -> list[dict[str, float]]:
    """Average per-sample :func:`evaluate_layers` results for each merge count."""
    if not results:
        return []
    levels = max(len(r) for r in results)
    out = []
    for m in range(levels):
        rows = [r[min(m, len(r) - 1)] for r in results]
        out.append(
            {
                "merges": m,
                "rgb_l1": float(np.mean([r["rgb_l1"] for r in rows])),
                "alpha_soft_iou": float(np.mean([r["alpha_soft_iou"] for r in rows])),
                "count": len(rows),
            }
        )
    return out
