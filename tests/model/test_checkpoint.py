"""Checkpoints embed their config and load strictly."""

import pytest
import torch

from liwi.model import CheckpointError, ModelConfig, build_model, load_checkpoint, save_checkpoint

TINY = ModelConfig(base_channels=8, depth=2, resolution=32)


def test_round_trip_rebuilds_identical_model(tmp_path):
    torch.manual_seed(0)
    model = build_model(TINY)
    path = save_checkpoint(model, tmp_path / "m.pt", meta={"note": "x"})
    ckpt = load_checkpoint(path)
    assert ckpt["config"] == TINY.model_dump() and ckpt["meta"] == {"note": "x"}
    again = build_model(checkpoint=path)  # config comes from the checkpoint
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x), again(x)
    for k in a:
        assert torch.equal(a[k], b[k])


def test_missing_and_unexpected_keys_are_errors(tmp_path):
    path = save_checkpoint(build_model(TINY), tmp_path / "m.pt")
    ckpt = load_checkpoint(path)
    missing = dict(
        ckpt, state_dict={k: v for k, v in ckpt["state_dict"].items() if "stem" not in k}
    )
    with pytest.raises(CheckpointError, match="missing keys.*stem"):
        build_model(checkpoint=missing)
    extra = dict(ckpt, state_dict={**ckpt["state_dict"], "bogus.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="unexpected keys.*bogus"):
        build_model(checkpoint=extra)


def test_config_mismatch_is_an_error(tmp_path):
    path = save_checkpoint(build_model(TINY), tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        build_model(TINY.model_copy(update={"base_channels": 16}), checkpoint=path)


def test_unreadable_and_foreign_files_are_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a liwi-layernet"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="needs a config"):
        build_model()


def test_unknown_config_keys_are_errors():
    with pytest.raises(ValueError, match="extra"):
        ModelConfig(base_channels=8, colour="blue")
