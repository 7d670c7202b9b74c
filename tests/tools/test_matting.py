"""refine_alpha: soft edges closer to the truth than the binary mask, clean edge colours."""

import numpy as np
import pytest

from liwi.layers import LayerStack
from liwi.synth.procedural import Placement, procedural_scene
from liwi.tools.base import ToolError
from liwi.tools.matting import AlphaRefiner, MattingInput, consistent_foreground, make_trimap


def soft_scene(h=120, w=140, seed=0):
    """A red object with a 6 px soft edge on a greenish floor (green contaminates edges)."""
    obj = Placement(cx=0.5, base=0.8, rx=0.25, ry=0.3, color=(0.9, 0.2, 0.1), soft=6.0)
    stack = procedural_scene(seed, (h, w), objects=[obj], shadow=False, horizon=0.1)
    bg = stack.background.copy()
    bg[..., 1] = np.clip(bg[..., 1] + 0.25, 0, 1)
    o = stack.objects[0]
    color, alpha = o.rgba[..., :3].copy(), o.alpha
    image = LayerStack.from_arrays(bg, [color], [alpha]).composite()
    return image, alpha, color


def test_matte_beats_the_binary_mask_and_decontaminates_colour():
    image, alpha, color = soft_scene()
    mask = (alpha > 0.5).astype(np.float32)
    out = AlphaRefiner()(MattingInput(image, mask), {"band_px": 6})
    band = out.trimap == 0.5
    assert band.any()
    err_mask = np.abs(mask - alpha)[band].mean()
    err_matte = np.abs(out.alpha - alpha)[band].mean()
    assert err_matte < 0.5 * err_mask, (err_matte, err_mask)
    # sure regions are exact
    assert np.all(out.alpha[out.trimap == 1.0] == 1.0)
    assert np.all(out.alpha[out.trimap == 0.0] == 0.0)
    # edge colour: estimated F is closer to the true red than the contaminated image
    edge = band & (alpha > 0.2) & (alpha < 0.8)
    err_img = np.abs(image - color)[edge].mean()
    err_fg = np.abs(out.foreground - color)[edge].mean()
    assert err_fg < 0.5 * err_img, (err_fg, err_img)
    assert out.alpha.dtype == np.float32 and out.foreground.dtype == np.float32


def test_reduced_resolution_matting_still_helps():
    image, alpha, _ = soft_scene(h=200, w=240)
    mask = (alpha > 0.5).astype(np.float32)
    out = AlphaRefiner()(MattingInput(image, mask), {"max_side": 96, "band_px": 8})
    band = out.trimap == 0.5
    assert np.abs(out.alpha - alpha)[band].mean() < 0.7 * np.abs(mask - alpha)[band].mean()


def test_trimap_shrinks_its_band_for_thin_objects():
    mask = np.zeros((40, 40), np.float32)
    mask[10:30, 18:22] = 1  # 4 px wide bar
    tri = make_trimap(mask, band_px=8)
    assert (tri == 1.0).any() and (tri == 0.5).any() and (tri == 0.0).any()


@pytest.mark.parametrize("fill, reason", [(0.0, "empty"), (1.0, "whole image")])
def test_degenerate_masks_are_refused(fill, reason):
    image, _, _ = soft_scene()
    with pytest.raises(ToolError, match=reason):
        AlphaRefiner()(MattingInput(image, np.full(image.shape[:2], fill, np.float32)))


def test_mask_of_the_wrong_size_is_refused():
    image, _, _ = soft_scene()
    with pytest.raises(ToolError, match="does not match"):
        AlphaRefiner()(MattingInput(image, np.ones((10, 10), np.float32)))


def test_consistent_foreground_makes_the_stack_exact():
    image, alpha, _ = soft_scene()
    out = AlphaRefiner()(MattingInput(image, (alpha > 0.5).astype(np.float32)))
    rng = np.random.default_rng(1)
    background = np.clip(image + rng.normal(0, 0.05, image.shape), 0, 1).astype(np.float32)
    fg = consistent_foreground(image, out.alpha, out.foreground, background)
    a = out.alpha[..., None]
    recon = a * fg + (1 - a) * background
    raw = (image - (1 - a) * background) / np.maximum(a, 1e-6)
    band = (out.alpha >= 0.05) & (out.alpha < 1)
    solvable = band & np.all((raw >= 0) & (raw <= 1), axis=2)  # no clipping needed
    assert solvable.sum() > 0.3 * band.sum()
    before = np.abs(a * out.foreground + (1 - a) * background - image)[solvable].max()
    after = np.abs(recon - image)[solvable].max()
    assert after < 1e-4 < before
    assert fg.min() >= 0 and fg.max() <= 1
