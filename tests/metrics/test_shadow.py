"""Shadow metrics against hand-computed values."""

import math

import numpy as np
import pytest

from liwi.metrics.shadow import shadow_metrics


def test_hand_computed_shadow_metrics():
    gt_s = np.array([[0.5, 0.5], [1.0, 1.0]], np.float32)
    pred_s = np.array([[0.5, 1.0], [0.8, 1.0]], np.float32)
    gt_bg = np.zeros((2, 2, 3), np.float32)
    pred_bg = np.zeros((2, 2, 3), np.float32)
    pred_bg[0, 0] = 0.3  # inside the gt shadow
    pred_bg[1, 1] = 0.9  # outside: ignored
    m = shadow_metrics(pred_s, gt_s, pred_bg, gt_bg)
    assert m["attenuation_l1"] == pytest.approx((0 + 0.5 + 0.2 + 0) / 4)
    # regions: gt {(0,0),(0,1)}, pred {(0,0),(1,0)} → IoU 1/3
    assert m["shadow_iou"] == pytest.approx(1 / 3)
    assert m["shadow_precision"] == pytest.approx(1 / 2) and m["shadow_recall"] == pytest.approx(
        1 / 2
    )
    assert m["background_l1_shadow"] == pytest.approx(0.15)  # (0.3 + 0) / 2 pixels


def test_no_shadow_anywhere():
    ones = np.ones((3, 3, 3), np.float32)
    m = shadow_metrics(ones, ones, ones, ones)
    assert m["attenuation_l1"] == 0.0 and m["shadow_iou"] == 1.0
    assert math.isnan(m["background_l1_shadow"])
    assert math.isnan(m["shadow_precision"]) and math.isnan(m["shadow_recall"])
