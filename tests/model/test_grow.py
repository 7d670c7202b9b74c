"""Growing a trained network (wider top level, more blocks) keeps its outputs and lets the new
weights learn."""

import pytest
import torch

from liwi.model import CheckpointError, build_model, preset, save_checkpoint
from liwi.model.checkpoint import load_checkpoint
from liwi.model.grow import deepen, widen_top
from liwi.training.init import initial_model


def _trained_like(tmp_path, **overrides):
    """A cpu-small net whose zero-initialised heads are randomised (as after training)."""
    torch.manual_seed(0)
    net = build_model(preset("cpu-small", resolution=64, **overrides))
    with torch.no_grad():
        for p in net.heads.parameters():
            p.normal_(0.0, 0.3)
    return net, load_checkpoint(save_checkpoint(net, tmp_path / "src.pt"))


@pytest.mark.parametrize("channels", [12, 16])
def test_widened_network_computes_the_same_layers(tmp_path, channels):
    net, ckpt = _trained_like(tmp_path)
    wide = build_model(checkpoint=widen_top(ckpt, channels))
    assert wide.config.top_width == channels
    assert wide.heads.mix.out_channels == channels
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in net.parameters())
    torch.manual_seed(1)
    x, p = torch.rand(2, 3, 64, 48), torch.rand(2, 3, 64, 48)
    with torch.no_grad():
        a, b = net(x, p), wide(x, p)
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=2e-5, rtol=0), k


def test_new_channels_get_gradients_through_the_zero_weights(tmp_path):
    _, ckpt = _trained_like(tmp_path)
    wide = build_model(checkpoint=widen_top(ckpt, 16)).train()
    out = wide(torch.rand(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))
    (out["shadow"].mean() + out["alpha"].mean()).backward()
    grad = wide.heads.shadow.weight.grad[0, 8:, 0, 0]  # the shadow head's new inputs
    assert grad.abs().sum() > 0
    assert wide.heads.shadow.weight[0, 8:].abs().sum() == 0  # still zero before a step


def test_widening_refuses_group_mixing_and_shrinking(tmp_path):
    _, ckpt = _trained_like(tmp_path)
    with pytest.raises(CheckpointError, match="GroupNorm group"):
        widen_top(ckpt, 24)  # 48-channel decoder input: groups of 6, not 4
    with pytest.raises(CheckpointError, match="only grow"):
        widen_top(ckpt, 4)
    assert widen_top(ckpt, 8) is ckpt


def test_warm_start_with_a_wider_top_level(tmp_path):
    net, _ = _trained_like(tmp_path)
    grown = {"top_channels": 16, "blocks_per_level": 2}
    model = initial_model("tiny", grown, init_from=str(tmp_path / "src.pt"))
    assert model.config == net.config.model_copy(update=grown)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["shadow"], net(x)["shadow"], atol=2e-5, rtol=0)


def test_deepened_network_computes_the_same_layers_and_its_new_blocks_learn(tmp_path):
    net, ckpt = _trained_like(tmp_path)
    deep = build_model(checkpoint=deepen(widen_top(ckpt, 16), 2))
    assert deep.config.blocks_per_level == 2 and deep.config.top_width == 16
    x, p = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        a, b = net(x, p), deep(x, p)
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=2e-5, rtol=0), k
    deep.train()
    deep(x, p)["shadow"].mean().backward()
    assert deep.trunk.mid[1].conv2.weight.grad.abs().sum() > 0
    with pytest.raises(CheckpointError, match="only grow"):
        deepen(widen_top(ckpt, 16) | {"config": deep.config.model_dump()}, 1)
