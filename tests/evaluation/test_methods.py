"""The evaluation's decomposers: identity and the classical ADD tool chain."""

from __future__ import annotations

import numpy as np
import pytest

from liwi.evaluation.methods import build_methods, classical_method, identity_method


@pytest.fixture(scope="module")
def image():
    from liwi.layers import LayerStack, ObjectLayer

    h, w = 48, 64
    bg = np.zeros((h, w, 3), np.float32) + np.linspace(0.5, 0.8, w)[None, :, None]
    alpha = np.zeros((h, w), np.float32)
    alpha[14:34, 20:44] = 1.0
    shadow = np.ones((h, w, 3), np.float32)
    shadow[34:40, 22:46] = 0.6  # a cast shadow under the object
    obj = ObjectLayer.from_maps(np.full((h, w, 3), (0.9, 0.2, 0.1), np.float32), alpha, shadow)
    return LayerStack(background=bg, objects=[obj]).composite()


def test_identity_is_the_input_as_background(image):
    stack = identity_method().decompose(image, 3)
    assert stack.objects == [] and np.array_equal(stack.background, image)


def test_classical_chain_peels_an_object_and_recomposes_the_input(image):
    method = classical_method()
    stack = method.decompose(image, 2)
    assert stack.n_layers == 2
    assert stack.objects[0].alpha[20:28, 26:38].mean() > 0.8  # found the red square
    assert np.abs(stack.composite() - image).mean() < 0.03


def test_unknown_baseline_is_an_error():
    with pytest.raises(ValueError, match="unknown baseline"):
        build_methods(None, ["magic"])


def test_prior_baseline_finds_the_object_without_a_shadow(image):
    from liwi.evaluation.methods import prior_method

    stack = prior_method().decompose(image, 2)
    assert stack.n_layers == 2
    obj = stack.objects[0]
    assert obj.alpha[20:28, 26:38].mean() > 0.8  # the red square
    assert obj.attenuation.min() == 1.0  # the prior has no shadow
    methods = build_methods(None, ["identity", "prior"])
    assert [m.name for m in methods] == ["model", "identity", "prior"]
