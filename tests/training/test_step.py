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
from liwi.training.step import eval_step, lr_factor, make_optimizer, set_lr, train_step


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


def test_set_lr_keeps_each_groups_share():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr_scale": 0.05}], lr=1.0)
    set_lr(opt, 2e-3)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([2e-3, 1e-4])


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
    assert [h["step"] for h in hist if h["kind"] == "val"] == [2, 4, 4]  # every 2, and the end
    assert {k: v for k, v in hist[-1].items() if k not in ("kind", "step")} == pytest.approx(
        ckpt["meta"]["final_val"]
    )
    assert path.with_suffix(".loss.png").stat().st_size > 1000


def test_minutes_budget_stops_the_loop_and_each_epoch_is_announced(tmp_path, capsys):
    import numpy as np

    from liwi.losses import LossConfig
    from liwi.model import preset
    from liwi.model.network import LayerNet
    from liwi.training.data import StackDataset, collate, rows_from_table
    from liwi.training.loop import Budget, budget_done, run_budgeted
    from liwi.training.step import make_optimizer

    table = write_scene_table(str(tmp_path / "table"), n=6, size=40, seed=2)
    ds = StackDataset(rows_from_table([table], split="train"), DataConfig(crop=32), seed=0)
    model = LayerNet(preset("tiny", resolution=32))
    epochs: list[int] = []
    common = (model, make_optimizer(model, 1e-3, 0.0), LossConfig())
    args = (len(ds), lambda idx: collate([ds[i] for i in idx]), lambda: {"total": 0.5})
    rng = np.random.default_rng(0)
    steps = Budget(steps=3 * len(ds), max_minutes=60, lr=1e-3, batch_size=1, grad_clip=1.0,
                   val_every=100)  # fmt: skip
    run = run_budgeted(*common, steps, *args, tmp_path / "h.jsonl", rng, on_epoch=epochs.append,
                       validate_first=True)  # fmt: skip
    assert run.steps == 3 * len(ds) and epochs == [0, 1, 2]
    # the bar counts the budget, not a step count a wall clock may never reach
    bar = capsys.readouterr().err
    assert "100% of budget" in bar and f"step={run.steps}" in bar
    assert run.history[0] == {"kind": "val", "step": 0, "total": 0.5} and run.final_val == {
        "total": 0.5
    }
    no_time = Budget(steps=1000, max_minutes=1e-9, lr=1e-3, batch_size=1, grad_clip=1.0,
                     val_every=100)  # fmt: skip
    assert (
        run_budgeted(*common, no_time, *args, tmp_path / "h2.jsonl", rng, progress=False).steps == 0
    )
    minutes_left = Budget(steps=10**6, max_minutes=2.0, lr=1e-3, batch_size=1, grad_clip=1.0,
                          val_every=100)  # fmt: skip
    assert budget_done(500, 60.0, minutes_left) == 50.0  # half the minutes, few of the steps
    assert budget_done(10**6, 0.0, minutes_left) == 100.0


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


def test_a_stop_signal_ends_the_loop_after_its_step_without_a_final_validation(tmp_path):
    import os
    import signal

    from liwi.model import preset
    from liwi.model.network import LayerNet
    from liwi.training.data import rows_from_table
    from liwi.training.loop import Budget, TrainingStopped, run_budgeted
    from liwi.training.step import make_optimizer

    table = write_scene_table(str(tmp_path / "table"), n=6, size=40, seed=2)
    ds = StackDataset(rows_from_table([table], split="train"), DataConfig(crop=32), seed=0)
    model = LayerNet(preset("tiny", resolution=32))
    made = []

    def make_batch(idx):
        made.append(idx)
        if len(made) == 2:  # a SIGTERM arrives while the second batch is being made
            os.kill(os.getpid(), signal.SIGTERM)
        return collate([ds[i] for i in idx])

    budget = Budget(steps=50, max_minutes=60, lr=1e-3, batch_size=1, grad_clip=1.0, val_every=10)
    handler = signal.getsignal(signal.SIGTERM)
    result = run_budgeted(model, make_optimizer(model, 1e-3, 0.0), LossConfig(), budget, len(ds),
                          make_batch, lambda: {"total": 0.5}, tmp_path / "h.jsonl",
                          np.random.default_rng(0), validate_first=True, progress=False)  # fmt: skip
    assert signal.getsignal(signal.SIGTERM) is handler  # the loop's recorder is gone
    assert result.steps == 2 and result.stopped_by == "SIGTERM"  # the second step finished
    kinds = [h["kind"] for h in result.history]
    assert kinds == ["val", "train", "train", "stopped"]  # no validation after the stop
    assert result.final_val == {"total": 0.5}
    saved = tmp_path / "m.pt"
    with pytest.raises(TrainingStopped, match="stopped by SIGTERM after 2 steps") as raised:
        result.raise_if_stopped(saved)
    assert raised.value.checkpoint == saved and raised.value.signum == signal.SIGTERM
