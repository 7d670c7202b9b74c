"""Prompt rasterisation: boxes, points and masks land where they should at any scale."""

import numpy as np
import pytest

from liwi.model.prompts import Prompt, PromptError, rasterize


def test_empty_prompt_is_all_zero():
    assert not rasterize(None, (10, 20), (5, 10)).any()
    assert not rasterize(Prompt(), (10, 20), (5, 10)).any()


def test_box_scales_to_target_size():
    out = rasterize(Prompt(box=(10, 20, 30, 40)), (100, 100), (50, 50))
    assert out.shape == (3, 50, 50)
    ys, xs = np.nonzero(out[1])
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (5, 10, 15, 20)
    assert not out[0].any() and not out[2].any()


def test_point_peaks_at_its_pixel():
    out = rasterize(Prompt(points=[(7, 3)]), (16, 16), (16, 16))
    assert np.unravel_index(out[2].argmax(), out[2].shape) == (3, 7)
    assert out[2].max() == pytest.approx(1.0)


def test_mask_is_resized():
    mask = np.zeros((8, 8), np.float32)
    mask[:, 4:] = 1.0
    out = rasterize(Prompt(mask=mask), (8, 8), (4, 4))
    np.testing.assert_allclose(out[0], np.repeat([[0, 0, 1, 1]], 4, axis=0), atol=1e-6)


@pytest.mark.parametrize(
    "prompt, match",
    [
        (Prompt(box=(5, 5, 5, 9)), "empty"),
        (Prompt(box=(50, 50, 60, 60)), "outside"),
        (Prompt(points=[(-1, 2)]), "outside"),
        (Prompt(mask=np.zeros((3, 3))), "mask shape"),
    ],
)
def test_bad_prompts_are_rejected(prompt, match):
    with pytest.raises(PromptError, match=match):
        rasterize(prompt, (20, 20), (10, 10))


@pytest.mark.parametrize(
    "box",
    [(-1, 0, 10, 10), (0, -0.5, 10, 10), (0, 0, 21, 10), (0, 0, 10, 20.5), (0, 0, 10, np.nan)],
)
def test_a_box_reaching_outside_the_image_is_rejected(box):
    """The one rule, as the HTTP API has always applied it."""
    with pytest.raises(PromptError, match="outside|finite"):
        Prompt(box=box).validate(20, 20)
    Prompt(box=(0, 0, 20, 20)).validate(20, 20)  # the whole image is fine


def test_cli_strings_parse_once():
    from liwi.model.prompts import parse_box, parse_point

    assert parse_box("1,2,3.5,4") == (1.0, 2.0, 3.5, 4.0)
    assert parse_point(" 3, 4") == (3.0, 4.0)
    for bad in ("1,2,3", "a,b,c,d"):
        with pytest.raises(PromptError, match="x0,y0,x1,y1"):
            parse_box(bad)
    with pytest.raises(PromptError, match="x,y"):
        parse_point("1")
