"""Classical inpainting: fills holes with the surround, never touches other pixels."""

import numpy as np
import pytest

from liwi.tools.base import ToolError
from liwi.tools.inpaint import ClassicalInpainter, InpaintInput

from .synthetic import shadow_scene


@pytest.mark.parametrize(
    "params",
    [{}, {"multiscale": False}, {"method": "ns"}, {"texture": 0.0}],
)
def test_fill_matches_the_hidden_background(params):
    sc = shadow_scene(with_shadow=False)
    out = ClassicalInpainter()(InpaintInput(sc.image, sc.alpha), params)
    hole = out.mask > 0.5
    assert hole[sc.alpha > 0.5].all(), "filled region must cover the object"
    assert np.array_equal(out.image[~hole], sc.image[~hole]), "pixels outside the hole changed"
    err = np.abs(out.image - sc.background)[hole].mean()
    naive = np.abs(sc.image - sc.background)[hole].mean()
    assert err < 0.04 and err < 0.15 * naive, (err, naive)
    assert out.image.dtype == np.float32 and out.image.min() >= 0 and out.image.max() <= 1


def test_dilation_grows_the_filled_region():
    sc = shadow_scene(with_shadow=False)
    small = ClassicalInpainter()(InpaintInput(sc.image, sc.alpha), {"dilate_px": 0}).mask.sum()
    big = ClassicalInpainter()(InpaintInput(sc.image, sc.alpha), {"dilate_px": 10}).mask.sum()
    assert big > small * 1.2


def test_texture_adds_fine_detail_like_the_surround():
    sc = shadow_scene(with_shadow=False)
    flat = ClassicalInpainter()(InpaintInput(sc.image, sc.alpha), {"texture": 0.0})
    tex = ClassicalInpainter()(InpaintInput(sc.image, sc.alpha), {"texture": 1.0})
    hole = tex.mask > 0.5
    surround_std = np.diff(sc.background, axis=1).std()
    flat_std = np.diff(flat.image, axis=1)[hole[:, 1:]].std()
    tex_std = np.diff(tex.image, axis=1)[hole[:, 1:]].std()
    assert flat_std < 0.5 * surround_std < tex_std < 2 * surround_std


def test_bad_masks_are_refused():
    sc = shadow_scene(with_shadow=False)
    with pytest.raises(ToolError, match="empty"):
        ClassicalInpainter()(InpaintInput(sc.image, np.zeros_like(sc.alpha)))
    with pytest.raises(ToolError, match="too little context"):
        ClassicalInpainter()(InpaintInput(sc.image, np.ones_like(sc.alpha)))
    with pytest.raises(ToolError, match="does not match"):
        ClassicalInpainter()(InpaintInput(sc.image, sc.alpha[:10]))
