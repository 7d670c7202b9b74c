"""DIS-style foreground metrics go through pysodmetrics and behave on known cases."""

import numpy as np
import pytest

from liwi.metrics.segmentation import fg_segmentation_metrics


def square(n=32):
    g = np.zeros((n, n), bool)
    g[8:24, 8:24] = True
    return g


def test_perfect_mask_scores_perfect():
    g = square()
    m = fg_segmentation_metrics([g.astype(np.float32)], [g])
    assert m["max_f"] == pytest.approx(1.0) and m["weighted_f"] == pytest.approx(1.0)
    assert m["mae"] == 0.0 and m["s_measure"] == pytest.approx(1.0, abs=1e-6)
    assert m["hce"] == 0.0 and m["count"] == 1 and m["soft_iou"] == pytest.approx(1.0)


def test_hand_computed_mae_and_worse_scores_for_a_shifted_mask():
    g = square()
    shifted = np.roll(g, 4, axis=1)
    m = fg_segmentation_metrics([shifted.astype(np.float32)], [g])
    # 4 columns × 16 rows wrong on each side → 128 of 1024 pixels
    assert m["mae"] == pytest.approx(128 / 1024)
    assert m["soft_iou"] == pytest.approx(12 * 16 / (20 * 16))  # overlap 12 of 20 columns
    assert m["max_f"] < 1.0 and m["weighted_f"] < 1.0 and m["s_measure"] < 1.0
    assert m["hce"] == 0.0  # HCE tolerates errors within 5 px of the boundary (relax=5)
    big = np.zeros((64, 64), bool)
    big[16:48, 16:48] = True
    half = big.copy()
    half[16:48, 16:32] = False  # half the object missing: a human must correct it
    assert fg_segmentation_metrics([half.astype(np.float32)], [big])["hce"] > 0


def test_size_mismatch_and_empty_input_are_errors():
    with pytest.raises(ValueError, match="differ in size"):
        fg_segmentation_metrics([np.zeros((4, 4))], [np.zeros((5, 5), bool)])
    with pytest.raises(ValueError, match="no prediction"):
        fg_segmentation_metrics([], [])


def test_soft_iou_reads_soft_maps_without_binarising():
    g = square().astype(np.float32)
    m = fg_segmentation_metrics([0.5 * g], [g], hce=False)
    assert m["soft_iou"] == pytest.approx(0.5, abs=2e-3)  # uint8 rounding of 0.5
    assert m["max_f"] == pytest.approx(1.0)  # thresholded scores cannot see the half
