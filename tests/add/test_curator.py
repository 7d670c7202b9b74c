"""The Layered Image Curator: accepts correct stacks, rejects planted bad ones with reasons."""

import numpy as np
import pytest

from liwi.add.curator import Curator, CuratorConfig, psnr
from liwi.layers import LayerStack
from liwi.sample_photos import procedural_scene


@pytest.fixture(scope="module")
def scene():
    stack = procedural_scene(3, 128, 1)
    return stack, stack.composite()


@pytest.mark.parametrize("seed,n", [(0, 1), (1, 2)])
def test_ground_truth_stacks_pass(seed, n):
    stack = procedural_scene(seed, 128, n)
    verdict = Curator()(stack.composite(), stack)
    assert verdict.passed, verdict.reasons
    assert verdict.scores["psnr"] == 100.0
    assert len(verdict.object_scores) == n and verdict.object_failures == [[]] * n
    assert 0 < verdict.scores["obj1_area"] < 0.3


def test_mask_covering_95_percent_is_rejected_with_a_reason(scene):
    stack, source = scene
    h, w = stack.size
    alpha = np.zeros(h * w, np.float32)
    alpha[h * w // 20 :] = 1.0  # everything but the top 5% of the image
    alpha = alpha.reshape(h, w)
    assert alpha.mean() == pytest.approx(0.95, abs=0.001)
    bad = LayerStack.from_arrays(stack.background, [source], [alpha])
    verdict = Curator()(source, bad)
    assert not verdict.passed
    assert "alpha_area" in verdict.failures and verdict.object_failures[0][0] == "alpha_area"
    assert "object 1 covers 95.0% of the image (max 80%)" in verdict.reasons, verdict.reasons
    assert "alpha_border" in verdict.failures  # it also runs along the frame


def test_background_that_still_shows_the_object_is_residue(scene):
    stack, source = scene
    bad = LayerStack(background=source.copy(), objects=stack.objects)
    verdict = Curator()(source, bad)
    assert "residue" in verdict.failures
    assert any("background still shows object 1" in r for r in verdict.reasons)


def test_a_blob_filled_hole_is_a_seam(scene):
    stack, source = scene
    bg = stack.background.copy()
    hole = stack.objects[0].alpha > 0.05
    bg[hole] = np.clip(bg[hole] + 0.35, 0, 1)  # a bright patch where the object was
    bad = LayerStack(background=bg, objects=stack.objects)
    verdict = Curator()(bad.composite(), bad)
    assert {"residue", "seam"} <= set(verdict.failures), verdict.reasons


def test_detached_and_too_dark_shadows_are_rejected(scene):
    stack, _ = scene
    obj = stack.objects[0]
    s = np.ones(stack.size, np.float32)
    s[2:14, 2:30] = 0.02  # far from the object, nearly black
    bad = LayerStack.from_arrays(stack.background, [obj.rgba[..., :3]], [obj.alpha], [s])
    verdict = Curator()(bad.composite(), bad)
    assert {"shadow_detached", "shadow_range"} <= set(verdict.failures), verdict.reasons


def test_fidelity_and_thresholds_come_from_config(scene):
    stack, source = scene
    noisy = np.clip(source + np.random.default_rng(0).normal(0, 0.05, source.shape), 0, 1)
    verdict = Curator()(noisy.astype(np.float32), stack)
    assert "psnr" in verdict.failures and verdict.scores["psnr"] < 30
    lenient = Curator(CuratorConfig(min_psnr=20.0))(noisy.astype(np.float32), stack)
    assert "psnr" not in lenient.failures


def test_vlm_judge_is_consulted_only_when_enabled(scene):
    stack, source = scene
    calls = []

    def judge(img, st):
        calls.append(st.n_layers)
        return False, "the object is floating", 0.2

    assert Curator(vlm=judge)(source, stack).passed and not calls
    verdict = Curator(CuratorConfig(use_vlm=True), vlm=judge)(source, stack)
    assert not verdict.passed and calls == [2]
    assert verdict.reasons == ["VLM verdict: the object is floating"]


def test_size_mismatch_and_psnr_helper(scene):
    stack, source = scene
    verdict = Curator()(source[:64], stack)
    assert verdict.failures == ["size"]
    assert psnr(source, source) == 100.0
    assert psnr(source, np.clip(source + 0.1, 0, 1)) < 21
