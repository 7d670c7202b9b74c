"""Evaluation metrics, as pure functions of arrays (no model, no I/O).

* :mod:`liwi.metrics.layers` — RGB L1 and Alpha soft IoU with the LayerD /
  Qwen-Image-Layered protocol (grouping, order-aware DTW, 0–5 greedy merges);
* :mod:`liwi.metrics.shadow` — attenuation L1, shadow-region IoU, background L1 in shadow;
* :mod:`liwi.metrics.segmentation` — DIS-5K style foreground segmentation through
  ``pysodmetrics`` (maxFβ, weighted Fβ, MAE, S-measure, E-measure, HCE).
"""

from liwi.metrics.layers import (
    decomposition_scores,
    evaluate_layers,
    rgb_l1,
    soft_iou,
    stack_eval_layers,
)
from liwi.metrics.shadow import shadow_metrics

__all__ = [
    "decomposition_scores",
    "evaluate_layers",
    "rgb_l1",
    "shadow_metrics",
    "soft_iou",
    "stack_eval_layers",
]
