"""One optimisation step learns; the local loop writes a loadable checkpoint."""

import json

import numpy as np
import pytest
import torch
import yaml

from liwi.losses import LossConfig
from liwi.model import ModelConfig, build_model
from liwi.synth.procedural import procedural_scene, write_scene_table
from liwi.training.data import DataConfig, StackDataset, collate
from liwi.training.step import eval_step, lr_factor, make_optimizer, train_step


def test_train_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_channels=8, depth=2, resolution=32))
    stacks = [procedural_scene(np.random.default_rng(i), 32, 1) for i in range(4)]
    batch = collate([StackDataset(stacks, DataConfig(crop=32))[i] for i in range(4)])
    opt = make_optimizer(model, 3e-3, 0.0)
    before = eval_step(model, batch, LossConfig())["total"]
    for _ in range(15):
        logs = train_step(model, opt, batch, LossConfig())
    assert set(logs) >= {"total", "recomposition", "degradation_restoration", "grad_norm"}
    assert eval_step(model, batch, LossConfig())["total"] < 0.8 * before


def test_lr_schedule_warms_up_and_decays():
    assert lr_factor(0.0) < lr_factor(0.03) == pytest.approx(1.0)
    assert lr_factor(1.0) == pytest.approx(0.05) and lr_factor(0.5) < 1.0


def test_local_loop_writes_checkpoint_history_and_plot(tmp_path):
    from liwi.training.local import TrainLocalConfig, run

    table = write_scene_table(str(tmp_path / "table"), n=20, size=40, seed=1)
    cfg = TrainLocalConfig(
        tables=[table],
        out=str(tmp_path / "run" / "m.pt"),
        preset="tiny",
        model={"resolution": 32},
        data=DataConfig(crop=32),
        steps=4,
        batch_size=2,
        val_every=2,
        val_samples=2,
    )
    path = run(cfg, progress=False)
    model = build_model(checkpoint=path)
    assert model.config.resolution == 32
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["meta"]["steps"] == 4 and "total" in ckpt["meta"]["final_val"]
    hist = [json.loads(x) for x in path.with_suffix(".history.jsonl").read_text().splitlines()]
    assert [h["kind"] for h in hist].count("train") == 4
    assert path.with_suffix(".loss.png").stat().st_size > 1000


def test_shipped_training_yaml_loads(tmp_path):
    from pathlib import Path

    from liwi.model import preset
    from liwi.training.local import TrainLocalConfig

    paths = sorted(Path("jobs/configs").glob("train_local*.yaml"))
    assert paths
    for path in paths:
        cfg = TrainLocalConfig.from_yaml(path)
        assert cfg.data.crop % preset(cfg.preset, **cfg.model).multiple == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"tables": ["x"], "learning_rate": 1}))
    with pytest.raises(ValueError, match="learning_rate"):
        TrainLocalConfig.from_yaml(bad)
