"""extract_shadow by the shipped network on procedural scenes with a known shadow."""

import numpy as np
import pytest
from tools.synthetic import shadow_scene
from tools.test_shadow import removed

from liwi.tools.base import ToolError
from liwi.tools.registry import get_tool
from liwi.tools.shadow import ShadowInput


@pytest.fixture(scope="module")
def extractor():
    tool = get_tool("extract_shadow", "model", device="cpu")
    tool.setup()
    return tool


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finds_the_cast_shadow_and_keeps_the_layer_math(extractor, seed):
    sc = shadow_scene(darkness=0.5, seed=seed)
    bg0 = removed(sc)
    out = extractor(ShadowInput(sc.image, sc.alpha, bg0))
    assert out.found
    free = sc.alpha < 0.01
    truth = (sc.attenuation.mean(axis=2) < 0.9) & free
    got = (out.attenuation.mean(axis=2) < 0.9) & free
    assert (truth & got).sum() / (truth | got).sum() > 0.3  # the network's, not exact
    assert (truth & got).sum() / got.sum() > 0.6  # what it calls shadow mostly is
    # B ⊙ S reproduces the object-removed background wherever B = B₀ / S is not clipped
    exact = free & (out.background.max(axis=2) < 1.0)
    assert exact.sum() > 0.99 * free.sum()
    np.testing.assert_allclose((out.background * out.attenuation)[exact], bg0[exact], atol=2e-3)
    assert out.attenuation.shape == sc.image.shape and out.attenuation.dtype == np.float32
    assert out.region[sc.alpha > 0.5].max() == 0.0  # the object itself is not its shadow


def test_empty_alpha_is_refused(extractor):
    sc = shadow_scene()
    with pytest.raises(ToolError, match="alpha is empty"):
        extractor(ShadowInput(sc.image, np.zeros_like(sc.alpha), sc.image))
