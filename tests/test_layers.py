"""Layer math: compositing identities and the shadow/attenuation conventions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from liwi.layers import (
    LayerError,
    LayerStack,
    ObjectLayer,
    attenuation,
    bbox_of,
    channel_min,
    multiply,
    over,
    shadow_from_attenuation,
)

H, W = 6, 5
unit = st.floats(0.0, 1.0, width=32, allow_nan=False)
rgb_arrays = arrays(np.float32, (H, W, 3), elements=unit)
alpha_arrays = arrays(np.float32, (H, W), elements=unit)


@given(rgb_arrays, rgb_arrays)
def test_opaque_normal_layer_replaces_base(base, rgb):
    np.testing.assert_allclose(over(base, rgb, np.ones((H, W), np.float32)), rgb, atol=1e-6)


@given(rgb_arrays, rgb_arrays)
def test_transparent_layers_change_nothing(base, rgb):
    zero = np.zeros((H, W), np.float32)
    np.testing.assert_allclose(over(base, rgb, zero), base, atol=1e-6)
    np.testing.assert_allclose(multiply(base, rgb, zero), base, atol=1e-6)


@given(rgb_arrays, alpha_arrays)
def test_grey_multiply_layer_equals_black_normal_layer(base, a):
    black = np.zeros((H, W, 3), np.float32)
    np.testing.assert_allclose(multiply(base, black, a), over(base, black, a), atol=1e-6)


@given(rgb_arrays, rgb_arrays, alpha_arrays)
def test_multiply_with_white_is_identity(base, rgb, a):
    white = np.ones((H, W, 3), np.float32)
    np.testing.assert_allclose(multiply(base, white, a), base, atol=1e-6)
    # and the attenuation map is S = 1 - a + a*rgb, bounded by [rgb, 1]
    s = attenuation(rgb, a)
    assert (s <= 1.0 + 1e-6).all() and (s >= rgb - 1e-6).all()


@given(arrays(np.float32, (H, W, 3), elements=unit))
def test_shadow_from_attenuation_round_trips(s):
    layer = shadow_from_attenuation(s)
    np.testing.assert_allclose(attenuation(layer[..., :3], layer[..., 3]), s, atol=1e-5)


@given(st.integers(0, 40), st.integers(0, 30), arrays(np.float32, (H, W, 3), elements=unit))
def test_local_shadow_layer_is_transparent_where_nothing_darkens(y, x, patch):
    """Where S = 1 the layer is exactly (0, 0, 0, 0), and the rest round-trips, wherever
    the shadow sits in a larger frame."""
    s = np.ones((48, 36, 3), np.float32)
    s[y : y + H, x : x + W] = patch[: 48 - y, : 36 - x]
    layer = shadow_from_attenuation(s)
    np.testing.assert_allclose(attenuation(layer[..., :3], layer[..., 3]), s, atol=1e-5)
    dark = s.min(axis=2) < 1.0
    assert np.all(layer[~dark] == 0.0)
    assert np.all(shadow_from_attenuation(np.ones((8, 8), np.float32)) == 0.0)


@given(arrays(np.float32, st.tuples(st.just(H), st.just(W), st.integers(1, 4)), elements=unit))
def test_channel_min_is_numpys_minimum_over_channels(x):
    assert np.array_equal(channel_min(x), x.min(axis=2))


@given(arrays(np.float32, (H, W), elements=unit))
def test_grey_attenuation_gives_black_shadow(s):
    layer = shadow_from_attenuation(s)
    assert np.all(layer[..., :3] == 0.0)
    np.testing.assert_allclose(layer[..., 3], 1.0 - s, atol=1e-6)


@settings(max_examples=50)
@given(rgb_arrays, rgb_arrays, alpha_arrays, arrays(np.float32, (H, W), elements=unit))
def test_single_object_matches_closed_form(bg, fg, a, s):
    """I = α·F + (1 − α)·(B ⊙ S)."""
    stack = LayerStack.from_arrays(bg, [fg], [a], [s])
    expected = a[..., None] * fg + (1 - a[..., None]) * (bg * s[..., None])
    np.testing.assert_allclose(stack.composite(), expected, atol=1e-5)


def test_stack_order_and_manifest():
    rng = np.random.default_rng(0)
    bg = rng.random((H, W, 3), dtype=np.float32)
    a1 = np.zeros((H, W), np.float32)
    a1[1:3, 1:4] = 1.0
    s1 = np.ones((H, W), np.float32)
    s1[3:5, 1:4] = 0.5
    stack = LayerStack.from_arrays(
        bg, [np.ones((H, W, 3)), np.zeros((H, W, 3))], [a1, a1 * 0.5], [s1, None]
    )
    names = [layer.name for layer in stack.layers()]
    assert names == ["background", "shadow_1", "object_1", "object_2"]
    assert [layer.blend for layer in stack.layers()] == ["normal", "multiply", "normal", "normal"]
    m = stack.manifest()
    assert m["n_layers"] == 3 and m["objects"][0]["bbox"] == [1, 1, 4, 3]
    assert m["objects"][0]["shadow_area"] == pytest.approx(6 / 30)
    # second object (half-transparent black) sits on top of the first
    out = stack.composite()
    np.testing.assert_allclose(out[1, 1], [0.5, 0.5, 0.5], atol=1e-6)
    # foreground composites both objects with the union alpha
    fg = stack.foreground()
    np.testing.assert_allclose(fg[1, 1, 3], 1.0, atol=1e-6)
    np.testing.assert_allclose(fg[1, 1, :3], [0.5, 0.5, 0.5], atol=1e-6)
    # without shadows the shadow region is the plain background
    np.testing.assert_allclose(stack.composite(shadows=False)[4, 2], bg[4, 2], atol=1e-6)
    np.testing.assert_allclose(stack.composite()[4, 2], bg[4, 2] * 0.5, atol=1e-6)


def test_bbox_of_empty_layer():
    assert bbox_of(np.zeros((4, 4))) == (0, 0, 0, 0)


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(LayerError, match="background: expected H×W×3"):
        LayerStack(background=np.zeros((4, 4)))
    with pytest.raises(LayerError, match="object 0 has size"):
        LayerStack(
            background=np.zeros((4, 4, 3)),
            objects=[ObjectLayer(np.zeros((3, 3, 4)), np.zeros((3, 3, 4)))],
        )
    with pytest.raises(LayerError, match="dtype"):
        LayerStack(background=np.zeros((4, 4, 3), dtype=np.int64))
