"""LayerNet: shapes, ranges, input checks and a recorded output slice (fast test)."""

import numpy as np
import pytest
import torch

from liwi.model import ModelConfig, build_model, preset
from liwi.model.network import LayerNet

TINY = ModelConfig(base_channels=8, depth=2, resolution=32)


def seeded_model(cfg=TINY):
    torch.manual_seed(0)
    model = build_model(cfg)
    # Heads start at "identity/no shadow"; perturb them so the slice exercises every path.
    with torch.no_grad():
        for p in model.heads.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def seeded_input():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)


def test_output_shapes_and_ranges():
    model = seeded_model()
    image, prompt = seeded_input()
    out = model(image, prompt)
    assert set(out) == {"alpha", "color", "background", "shadow"}
    assert out["alpha"].shape == (1, 1, 32, 32)
    assert out["color"].shape == out["background"].shape == (1, 3, 32, 32)
    assert out["shadow"].shape == (1, 1, 32, 32)
    for v in out.values():
        assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0


def test_rgb_shadow_mode_has_three_channels():
    model = build_model(TINY.model_copy(update={"shadow_mode": "rgb"}))
    out = model(torch.rand(2, 3, 32, 32))
    assert out["shadow"].shape == (2, 3, 32, 32)


def test_fresh_model_starts_as_identity_without_shadow():
    torch.manual_seed(0)
    model = build_model(TINY)
    image = torch.rand(1, 3, 32, 32)
    out = model(image)
    image = image.clamp(1e-3, 1 - 1e-3)  # the logit residual's clip
    assert torch.allclose(out["background"], image, atol=1e-5)
    assert torch.allclose(out["color"], image, atol=1e-5)
    assert float(out["shadow"].min()) > 0.98


def test_recorded_output_slice():
    """diffusers-style: a tiny seeded model reproduces recorded numbers."""
    model = seeded_model()
    image, prompt = seeded_input()
    with torch.no_grad():
        out = model(image, prompt)
    got = np.concatenate(
        [out[k][0, 0, 10, 10:14].numpy() for k in ("alpha", "color", "background", "shadow")]
    )
    expected = np.array(EXPECTED_SLICE, dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-4)


# alpha, colour R, background R, shadow at row 10, columns 10–13 (recorded on CPU).
EXPECTED_SLICE = [
    *(0.478714, 0.510017, 0.504254, 0.488880),
    *(0.758694, 0.685740, 0.925869, 0.162635),
    *(0.759041, 0.684439, 0.926714, 0.157729),
    *(0.982876, 0.982484, 0.982343, 0.983183),
]


def test_size_must_be_multiple_of_two_to_depth():
    model = build_model(TINY)
    with pytest.raises(ValueError, match="multiple of 4"):
        model(torch.rand(1, 3, 30, 32))


def test_bad_prompt_shape_is_rejected():
    model = build_model(TINY)
    with pytest.raises(ValueError, match="prompt must be"):
        model(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32))


def test_presets_scale_parameter_count():
    tiny = build_model(preset("tiny")).n_params()
    small = build_model(preset("cpu-small")).n_params()
    large = LayerNet(preset("gpu-large")).n_params()
    assert tiny < 100_000 < small < 6_000_000 < large  # CPU model small, GPU model large
    with pytest.raises(KeyError, match="unknown model preset"):
        preset("huge")
