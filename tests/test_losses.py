"""Every loss term is zero on a perfect prediction and positive otherwise."""

import numpy as np
import pytest
import torch

from liwi import losses
from liwi.losses import LossConfig, compute_losses
from liwi.model.compose import composite_one
from liwi.synth.procedural import procedural_scene


def perfect_pair(degraded=0.0):
    """A target from a real procedural scene and a prediction equal to it."""
    stack = procedural_scene(np.random.default_rng(3), 32, 1)
    obj = stack.objects[0]

    def t(a):
        a = np.asarray(a, np.float32)
        return torch.from_numpy((a[..., None] if a.ndim == 2 else a).transpose(2, 0, 1)[None])

    target = {
        "alpha": t(obj.alpha),
        "color": t(obj.rgba[..., :3]),
        "background": t(stack.background),
        "shadow": t(obj.attenuation),
        "degraded": torch.tensor([degraded]),
    }
    target["image"] = composite_one(
        target["background"], target["color"], target["alpha"], target["shadow"]
    )
    pred = {k: target[k].clone() for k in ("alpha", "color", "background", "shadow")}
    return pred, target


def spoil(pred, key):
    bad = dict(pred)
    bad[key] = (pred[key] * 0.7 + 0.1).clamp(0, 1)
    return bad


TERMS = {
    "recomposition": "background",
    "background_l1": "background",
    "color_l1": "color",
    "alpha_l1": "alpha",
    "alpha_gradient": "alpha",
    "alpha_laplacian": "alpha",
    "alpha_iou": "alpha",
    "shadow_attenuation": "shadow",
    "shadow_background": "background",
    "shadow_iou": "shadow",
}


@pytest.mark.parametrize("name, key", TERMS.items())
def test_clean_term_zero_when_perfect_positive_when_wrong(name, key):
    pred, target = perfect_pair()
    fn = losses.CLEAN_TERMS[name]
    assert float(fn(pred, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(fn(spoil(pred, key), target)) > 1e-4


def test_degradation_term_zero_when_perfect_positive_when_wrong():
    pred, target = perfect_pair(degraded=1.0)
    w = target["degraded"]
    assert float(losses.degradation_restoration(pred, target, w)) == pytest.approx(0, abs=1e-6)
    assert float(losses.degradation_restoration(spoil(pred, "alpha"), target, w)) > 1e-3
    assert float(losses.degradation_restoration(spoil(pred, "color"), target, w)) > 1e-3


def test_compute_losses_total_zero_when_perfect_and_weights_switch_terms():
    pred, target = perfect_pair()
    out = compute_losses(pred, target)
    assert float(out["total"]) == pytest.approx(0.0, abs=1e-6)
    bad = spoil(pred, "background")
    full = compute_losses(bad, target)
    assert float(full["total"]) > 0
    off = compute_losses(bad, target, LossConfig.ablation(shadow_guided=False))
    assert "shadow_background" not in off and "shadow_attenuation" not in off
    assert "shadow_iou" not in full  # off by default (the shipped stages trained without it)
    assert "shadow_iou" in compute_losses(bad, target, LossConfig(shadow_iou=1.0))
    assert float(off["total"]) < float(full["total"])
    no_deg = LossConfig.ablation(degradation=False)
    assert "degradation_restoration" not in compute_losses(bad, target, no_deg)


def test_degraded_samples_only_feed_the_restoration_term():
    pred, target = perfect_pair(degraded=1.0)
    out = compute_losses(spoil(pred, "background"), target)
    assert float(out["background_l1"]) == 0.0  # degraded sample: not scored here
    out = compute_losses(spoil(pred, "alpha"), target)
    assert float(out["degradation_restoration"]) > 0


def test_grey_prediction_against_rgb_target_broadcasts():
    pred, target = perfect_pair()
    pred["shadow"] = target["shadow"].mean(dim=1, keepdim=True)  # grey procedural shadow: exact
    assert float(losses.shadow_attenuation(pred, target)) == pytest.approx(0.0, abs=1e-6)


def test_config_rejects_unknown_terms_and_negative_weights():
    with pytest.raises(ValueError):
        LossConfig(perceptual=1.0)
    with pytest.raises(ValueError):
        LossConfig(alpha_l1=-1.0)


def test_alpha_iou_punishes_the_empty_matte_and_spurious_alpha():
    pred, target = perfect_pair()
    empty = dict(pred, alpha=torch.zeros_like(pred["alpha"]))
    assert float(losses.alpha_iou(empty, target)) == pytest.approx(1.0)
    nothing = dict(target, alpha=torch.zeros_like(target["alpha"]))
    assert float(losses.alpha_iou(empty, nothing)) == pytest.approx(0.0)
    assert float(losses.alpha_iou(pred, nothing)) == pytest.approx(float(pred["alpha"].mean()))


def test_shadow_iou_scores_extent_not_pixel_count():
    pred, target = perfect_pair()
    assert (target["shadow"] < 0.9).any(), "the procedural scene casts a shadow"
    none = dict(pred, shadow=torch.ones_like(pred["shadow"]))
    assert float(losses.shadow_iou(none, target)) == pytest.approx(1.0)
    # half the shadow's darkening everywhere costs about half, however few pixels it covers
    half = dict(pred, shadow=1.0 - 0.5 * (1.0 - target["shadow"]))
    assert float(losses.shadow_iou(half, target)) == pytest.approx(0.5, abs=1e-3)
    lit = dict(target, shadow=torch.ones_like(target["shadow"]))
    assert float(losses.shadow_iou(none, lit)) == pytest.approx(0.0)
