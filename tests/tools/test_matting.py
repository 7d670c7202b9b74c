"""refine_alpha: soft edges closer to the truth than the binary mask, clean edge colours."""

import numpy as np
import pytest

from liwi.layers import LayerStack
from liwi.tools.base import ToolError
from liwi.tools.matting import AlphaRefiner, MattingInput, make_trimap

from .synthetic import disc, textured_background


def soft_scene(h=120, w=140, seed=0):
    rng = np.random.default_rng(seed)
    bg = textured_background(h, w, rng)
    bg[..., 1] = np.clip(bg[..., 1] + 0.25, 0, 1)  # greenish background to contaminate edges
    alpha = disc(h, w, 0.5 * h, 0.5 * w, 0.3 * h, 0.25 * w, soft=6.0)
    color = np.broadcast_to(np.array([0.9, 0.2, 0.1], np.float32), (h, w, 3)).copy()
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
