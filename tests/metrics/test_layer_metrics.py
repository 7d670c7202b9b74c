"""Layer metrics against hand-computed values."""

import numpy as np
import pytest

from liwi.layers import LayerStack
from liwi.metrics.layers import (
    alpha_over,
    decomposition_scores,
    dtw,
    evaluate_layers,
    group_non_overlapping,
    rgb_l1,
    soft_iou,
    stack_eval_layers,
)


def layer(rgb, alpha):
    """2×2 RGBA layer from a colour and a 2×2 alpha."""
    a = np.asarray(alpha, np.float32)
    c = np.broadcast_to(np.asarray(rgb, np.float32), (2, 2, 3))
    return np.concatenate([c, a[..., None]], axis=2)


def test_soft_iou_hand_computed():
    p = layer(0, [[1.0, 0.5], [0.0, 0.0]])
    g = layer(0, [[0.5, 0.5], [1.0, 0.0]])
    # Σmin = 0.5 + 0.5 + 0 + 0 = 1.0 ; Σmax = 1 + 0.5 + 1 + 0 = 2.5
    assert soft_iou(p, g) == pytest.approx(0.4)
    assert soft_iou(layer(0, np.zeros((2, 2))), layer(0, np.zeros((2, 2)))) == 1.0


def test_rgb_l1_only_where_gt_alpha_positive():
    g = layer([0.5, 0.5, 0.5], [[1, 1], [0, 0]])
    p = layer([0.5, 0.5, 0.5], [[1, 1], [1, 1]])
    p[1, :, :3] = 0.0  # wrong colour only where gt alpha is 0: ignored
    assert rgb_l1(p, g) == 0.0
    p[0, 0, :3] = [0.8, 0.5, 0.2]  # |Δ| = .3, 0, .3 → mean .2 on 1 of 2 support pixels
    assert rgb_l1(p, g) == pytest.approx(0.1)


def test_alpha_over_hand_computed():
    bottom = layer([1, 0, 0], np.full((2, 2), 0.5))
    top = layer([0, 0, 1], np.full((2, 2), 0.5))
    out = alpha_over(bottom, top)
    # a = .5 + .5·.5 = .75 ; premult rgb = (0,0,.5) + (.25,0,0) → straight (1/3, 0, 2/3)
    np.testing.assert_allclose(out[0, 0], [1 / 3, 0, 2 / 3, 0.75], atol=1e-6)


def test_grouping_of_non_overlapping_runs():
    bg = layer(0.2, np.ones((2, 2)))
    left = layer(0.5, [[1, 0], [1, 0]])
    right = layer(0.7, [[0, 1], [0, 1]])
    over_left = layer(0.9, [[1, 0], [0, 0]])
    assert group_non_overlapping([bg, left, right, over_left]) == [[0], [1, 2], [3]]


def test_dtw_path_hand_computed():
    cost = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.1], [1.0, 1.0, 0.0]])
    assert dtw(cost) == [(0, 0), (1, 1), (2, 2)]
    # two predictions for three gts: the middle gt is matched with its cheaper neighbour
    cost = np.array([[0.0, 0.2, 1.0], [1.0, 0.9, 0.0]])
    assert dtw(cost) == [(0, 0), (0, 1), (1, 2)]


def test_perfect_decomposition_scores_perfect():
    rng = np.random.default_rng(0)
    bg = np.concatenate([rng.random((2, 2, 3)), np.ones((2, 2, 1))], axis=2).astype(np.float32)
    obj = layer([0.1, 0.2, 0.3], [[1, 0.5], [0, 0]])
    res = evaluate_layers([bg, obj], [bg, obj])
    assert len(res) == 6 and all(r["alpha_soft_iou"] == 1.0 and r["rgb_l1"] == 0.0 for r in res)


def test_merge_fixes_an_over_split_prediction():
    bg = layer(0.2, np.ones((2, 2)))
    a = layer(0.6, [[1, 1], [0, 0]])
    b = layer(0.6, [[0, 1], [1, 0]])  # overlaps a: not grouped
    gt = [bg, alpha_over(a, b)]
    res = evaluate_layers([bg, a, b], gt, max_merges=2)
    assert res[0]["alpha_soft_iou"] < 1.0
    assert res[1]["alpha_soft_iou"] == pytest.approx(1.0) and res[1]["rgb_l1"] == pytest.approx(0.0)
    assert res[2] == {**res[1], "merges": 2}  # nothing left to gain: no further merge


def test_hand_computed_one_object_error():
    bg = layer(0.2, np.ones((2, 2)))
    gt_obj = layer(0.5, [[1, 1], [0, 0]])
    pred_obj = layer(0.6, [[1, 0], [0, 0]])
    res = evaluate_layers([bg, pred_obj], [bg, gt_obj], max_merges=0)
    # bg pair: l1 0, iou 1. object pair: iou 1/2; l1 over gt support (2 px): |.6-.5| = .1
    assert res[0]["alpha_soft_iou"] == pytest.approx(0.75)
    assert res[0]["rgb_l1"] == pytest.approx(0.05)


def test_aggregate_carries_short_results_forward_and_stack_layers():
    r1 = [{"rgb_l1": 0.2, "alpha_soft_iou": 0.5}, {"rgb_l1": 0.0, "alpha_soft_iou": 1.0}]
    r2 = [{"rgb_l1": 0.4, "alpha_soft_iou": 0.7}]
    agg = decomposition_scores([r1, r2])
    assert agg[0]["rgb_l1"] == pytest.approx(0.3) and agg[1]["alpha_soft_iou"] == pytest.approx(
        0.85
    )
    stack = LayerStack.from_arrays(np.zeros((2, 2, 3)), [np.ones((2, 2, 3))], [np.ones((2, 2))])
    seq = stack_eval_layers(stack)
    assert len(seq) == 2 and seq[0][..., 3].min() == 1.0


def test_empty_sequences_are_rejected():
    with pytest.raises(ValueError):
        evaluate_layers([], [layer(0, np.ones((2, 2)))])
