"""Model v2: our U²-Netp trunk equals the ONNX graph; zero-initialised LiWi paths; checkpoints."""

import numpy as np
import pytest
import torch

from liwi.model import build_model, save_checkpoint
from liwi.model.u2layernet import U2LayerNet, U2LayerNetConfig, pretrained, stretched_saliency


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return pretrained(U2LayerNetConfig()).eval()  # u2netp, fetched by the set-up


def test_trunk_equals_onnxruntime_on_a_random_input(model):
    import onnxruntime as ort

    from liwi.weights import resolve

    x = torch.rand(1, 3, 320, 320, generator=torch.Generator().manual_seed(1))
    sess = ort.InferenceSession(str(resolve("u2netp")), providers=["CPUExecutionProvider"])
    xn = ((x - model.trunk.mean) / model.trunk.std).numpy()
    ref = np.concatenate(sess.run(None, {sess.get_inputs()[0].name: xn}), axis=1)
    with torch.no_grad():
        ours = model.trunk(x).numpy()
    assert ours.shape == ref.shape == (1, 7, 320, 320)
    # two convolution libraries sum in different orders: on an AMD EPYC the largest gap is
    # 1.3e-4 (side map 2), the mean 5e-6; a misplaced weight would be off by ≫ 1e-2
    diff = np.abs(ours - ref)
    assert diff.max() < 5e-4 and diff.mean() < 2e-5


def test_zero_initialised_prompt_channels_leave_the_output_unchanged_at_step_0(model):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 96, 128, generator=g)
    prompt = torch.rand(2, 3, 96, 128, generator=g)
    with torch.no_grad():
        plain, prompted = model(x), model(x, prompt)
        sal = model.trunk(x)
    for key in ("alpha", "color", "background", "shadow"):
        torch.testing.assert_close(plain[key], prompted[key], rtol=0, atol=0)
    # the pretrained behaviour is intact: alpha is the trunk's stretched saliency, the
    # colour is the input, and there is (almost) no shadow
    torch.testing.assert_close(plain["alpha"], stretched_saliency(sal[:, :1]), atol=1.5e-3, rtol=0)
    torch.testing.assert_close(plain["color"], x.clamp(1e-3, 1 - 1e-3), atol=1e-5, rtol=0)
    assert float(plain["shadow"].min()) > 0.98


def test_training_moves_the_heads_and_leaves_the_frozen_trunk(model):
    net = pretrained(U2LayerNetConfig())
    trunk_before = {k: v.clone() for k, v in net.trunk.state_dict().items()}
    heads_before = {k: v.clone() for k, v in net.heads.state_dict().items()}
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    x = torch.rand(2, 3, 64, 64)
    prompt = torch.zeros(2, 3, 64, 64)
    prompt[:, 0, 16:48, 16:48] = 1.0
    net.train()
    for _ in range(2):  # step 1 moves the zero output convs, step 2 the prompt path behind them
        opt.zero_grad()
        out = net(x, prompt)
        (out["alpha"] - prompt[:, :1]).abs().mean().backward()
        opt.step()
    assert all(torch.equal(v, net.trunk.state_dict()[k]) for k, v in trunk_before.items())
    assert any(not torch.equal(v, net.heads.state_dict()[k]) for k, v in heads_before.items())
    net.eval()
    with torch.no_grad():  # the prompt path is live
        assert not torch.equal(net(x, prompt)["alpha"], net(x)["alpha"])


def test_checkpoint_round_trip_rebuilds_v2(model, tmp_path):
    path = save_checkpoint(model, tmp_path / "v2.pt", meta={"note": "test"})
    again = build_model(checkpoint=path)
    assert isinstance(again, U2LayerNet) and again.config == model.config
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x)["alpha"], model(x)["alpha"])
    assert path.stat().st_size < 25e6  # the shipped-size budget of issue 12


def test_precomputed_saliency_equals_running_the_trunk(model):
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        own = model(x)
        given = model(x, saliency=model.trunk(x))
    torch.testing.assert_close(own["shadow"], given["shadow"])
