"""extract_shadow on procedural scenes with a known shadow (liwi.synth.procedural)."""

import numpy as np
import pytest

from liwi.layers import LayerStack
from liwi.tools.base import ToolError
from liwi.tools.inpaint import ClassicalInpainter, InpaintInput
from liwi.tools.shadow import ShadowExtractor, ShadowInput

from .synthetic import shadow_scene


def removed(sc):
    """The object-removed background the agent would pass (shadow still in it)."""
    return ClassicalInpainter()(InpaintInput(sc.image, sc.alpha)).image


@pytest.mark.parametrize("darkness, seed", [(0.5, 0), (0.35, 1), (0.65, 2)])
def test_recovers_a_known_shadow(darkness, seed):
    sc = shadow_scene(darkness=darkness, seed=seed)
    bg0 = removed(sc)
    out = ShadowExtractor()(ShadowInput(sc.image, sc.alpha, bg0))
    assert out.found
    free = sc.alpha < 0.01  # pixels the object does not cover
    truth = (sc.attenuation.mean(axis=2) < 0.9) & free
    got = (out.attenuation.mean(axis=2) < 0.9) & free
    iou = (truth & got).sum() / (truth | got).sum()
    assert iou > 0.8, iou
    s_err = np.abs(out.attenuation - sc.attenuation)[truth].mean()
    assert s_err < 0.05, s_err
    b_err = np.abs(out.background - sc.background)[truth].mean()
    assert b_err < 0.04, b_err
    # layer math: B ⊙ S reproduces the object-removed background off the object
    np.testing.assert_allclose((out.background * out.attenuation)[free], bg0[free], atol=2e-3)
    assert out.attenuation.shape == sc.image.shape and out.attenuation.dtype == np.float32
    assert out.attenuation.min() >= 0.0 and out.attenuation.max() <= 1.0
    assert out.stats["mean_attenuation"] < 0.9


def test_the_stack_recomposes_the_photo():
    sc = shadow_scene()
    out = ShadowExtractor()(ShadowInput(sc.image, sc.alpha, sc.image))
    color = sc.stack.objects[0].rgba[..., :3]
    stack = LayerStack.from_arrays(out.background, [color], [sc.alpha], [out.attenuation])
    # exact wherever the photo is pure object or pure background (soft edges need F and B)
    hard = (sc.alpha == 0.0) | (sc.alpha == 1.0)
    np.testing.assert_allclose(stack.composite()[hard], sc.image[hard], atol=3e-3)
    assert stack.objects[0].shadow_area > 0.03


def test_no_shadow_means_no_shadow():
    sc = shadow_scene(with_shadow=False)
    bg0 = removed(sc)
    out = ShadowExtractor()(ShadowInput(sc.image, sc.alpha, bg0))
    assert not out.found
    assert np.all(out.attenuation == 1.0)
    assert np.array_equal(out.background, bg0)


def test_darkness_threshold_is_honoured():
    sc = shadow_scene(darkness=0.25)  # 25% darkening
    bg0 = removed(sc)
    assert ShadowExtractor()(ShadowInput(sc.image, sc.alpha, bg0), {"darkness": 0.12}).found
    assert not ShadowExtractor()(ShadowInput(sc.image, sc.alpha, bg0), {"darkness": 0.4}).found


def test_detached_dark_patches_are_not_shadows():
    sc = shadow_scene(with_shadow=False)
    image = sc.image.copy()
    image[10:40, 150:190] *= 0.5  # dark patch far from the object
    bg0 = ClassicalInpainter()(InpaintInput(image, sc.alpha)).image
    out = ShadowExtractor()(ShadowInput(image, sc.alpha, bg0), {"search_radius": 2.0})
    assert not out.found or out.region[10:40, 150:190].mean() < 0.05


def test_coloured_attenuation_keeps_the_tint():
    sc = shadow_scene()
    tinted = sc.image.copy()
    shadow = sc.attenuation.mean(axis=2) < 0.95
    tinted[shadow] *= np.array([0.92, 0.97, 1.0], np.float32)  # bluish shadow
    out = ShadowExtractor()(ShadowInput(tinted, sc.alpha, tinted), {"color": True})
    core = sc.attenuation.mean(axis=2) < 0.6
    s = out.attenuation[core & (sc.alpha < 0.01)]
    assert (s[:, 2] - s[:, 0]).mean() > 0.02
    grey = ShadowExtractor()(ShadowInput(tinted, sc.alpha, tinted), {"color": False})
    g = grey.attenuation[core & (sc.alpha < 0.01)]
    assert np.abs(g[:, 2] - g[:, 0]).max() < 1e-6


def test_bad_input_is_refused():
    sc = shadow_scene()
    with pytest.raises(ToolError, match="alpha is empty"):
        ShadowExtractor()(ShadowInput(sc.image, np.zeros_like(sc.alpha), sc.image))
    with pytest.raises(ToolError, match="background"):
        ShadowExtractor()(ShadowInput(sc.image, sc.alpha, sc.image[:, :50]))


def test_darkening_above_the_object_is_not_its_shadow_unless_allowed():
    sc = shadow_scene(with_shadow=False)
    image = sc.image.copy()
    ys, xs = np.nonzero(sc.alpha > 0.5)
    top, cx = ys.min(), int(xs.mean())
    image[max(0, top - 25) : top + 8, cx - 15 : cx + 15] *= 0.55  # dark cap on its top
    image = np.where(sc.alpha[..., None] > 0.5, sc.image, image)
    bg0 = ClassicalInpainter()(InpaintInput(image, sc.alpha)).image
    assert not ShadowExtractor()(ShadowInput(image, sc.alpha, bg0)).found
    assert ShadowExtractor()(ShadowInput(image, sc.alpha, bg0), {"below": 0.0}).found
