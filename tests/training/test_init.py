"""Warm starts: a training run can begin from the weights of an existing checkpoint."""

import pytest
import torch

from liwi.model import CheckpointError, build_model, preset, save_checkpoint
from liwi.training.init import initial_model


def test_fresh_model_follows_the_preset_and_overrides():
    model = initial_model("tiny", {"resolution": 48})
    assert model.config == preset("tiny", resolution=48)


def test_warm_start_copies_weights_and_applies_weightless_overrides(tmp_path):
    torch.manual_seed(3)
    source = build_model(preset("tiny"))
    path = save_checkpoint(source, tmp_path / "src.pt")
    model = initial_model("cpu-small", {"resolution": 96}, init_from=str(path))
    # the checkpoint's architecture wins over the preset name; the override still applies
    assert model.config == preset("tiny", resolution=96)
    for (name, a), (_, b) in zip(
        source.state_dict().items(), model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_warm_start_rejects_overrides_that_change_weight_shapes(tmp_path):
    path = save_checkpoint(build_model(preset("tiny")), tmp_path / "src.pt")
    with pytest.raises(CheckpointError, match="does not fit|missing keys|size mismatch"):
        initial_model("tiny", {"base_channels": 16}, init_from=str(path))


def test_warm_start_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        initial_model("tiny", {}, init_from=str(tmp_path / "nope.pt"))


def test_ray_train_config_checks_the_crop_against_the_warm_start_not_the_preset():
    from pydantic import ValidationError

    from liwi.training.data import DataConfig
    from liwi.training.distributed import TrainConfig

    with pytest.raises(ValidationError, match="multiple of 16"):
        TrainConfig(tables=["t"], preset="cpu-small", data=DataConfig(crop=40))
    # with a warm start the architecture (and so the multiple) is the checkpoint's
    cfg = TrainConfig(tables=["t"], init_from="m.pt", data=DataConfig(crop=40))
    assert cfg.init_from == "m.pt"
