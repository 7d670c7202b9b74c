"""The torch layer math equals liwi.layers (numpy) on random stacks."""

import numpy as np
import torch

from liwi import layers
from liwi.model import compose


def _t(a):
    a = np.asarray(a, np.float32)
    return torch.from_numpy(a.transpose(2, 0, 1)[None] if a.ndim == 3 else a[None, None])


def test_over_multiply_attenuation_match_numpy():
    rng = np.random.default_rng(0)
    base, rgb = rng.random((6, 5, 3), np.float32), rng.random((6, 5, 3), np.float32)
    alpha = rng.random((6, 5), np.float32)
    for np_fn, t_fn in [(layers.over, compose.over), (layers.multiply, compose.multiply)]:
        want = np_fn(base, rgb, alpha)
        got = t_fn(_t(base), _t(rgb), _t(alpha))[0].numpy().transpose(1, 2, 0)
        np.testing.assert_allclose(got, want, atol=1e-6)
    want = layers.attenuation(rgb, alpha)
    got = compose.attenuation(_t(rgb), _t(alpha))[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_composite_one_matches_layer_stack():
    rng = np.random.default_rng(1)
    bg, color = rng.random((8, 9, 3), np.float32), rng.random((8, 9, 3), np.float32)
    alpha, s = rng.random((8, 9), np.float32), rng.uniform(0.3, 1, (8, 9)).astype(np.float32)
    stack = layers.LayerStack.from_arrays(bg, [color], [alpha], [s])
    want = stack.composite()
    shadow = _t(stack.objects[0].attenuation)
    got = compose.composite_one(_t(bg), _t(color), _t(alpha), shadow)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, want, atol=1e-5)
