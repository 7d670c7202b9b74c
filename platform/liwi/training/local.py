"""Single-process training loop: the way the shipped default model is trained.

``run(TrainLocalConfig)`` reads a layer table, trains :class:`~liwi.model.network.LayerNet`
with :func:`liwi.training.step.train_step` until ``steps`` or ``max_minutes`` (whichever
comes first; the cosine schedule follows whichever is closer to done), validates on the
``val`` split, and writes the checkpoint, a JSONL history and a loss plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from liwi.config import JobConfig
from liwi.losses import LossConfig
from liwi.training.data import DataConfig


class TrainLocalConfig(JobConfig):
    """Config of the local training loop (YAML under ``jobs/configs/``)."""

    tables: list[str] = Field(min_length=1)  # layer tables (folder or s3://…), train/val splits
    out: str = "runs/local/liwi.pt"  # checkpoint path; history/plot go beside it
    preset: str = "cpu-small"  # model preset (liwi.model.config.PRESETS)
    model: dict[str, Any] = Field(default_factory=dict)  # overrides of the preset's fields
    init_from: str | None = None  # warm start: model URI whose weights (and architecture) start
    loss: LossConfig = Field(default_factory=LossConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    steps: int = Field(3000, ge=1)  # optimisation steps (upper bound)
    max_minutes: float = Field(25.0, gt=0)  # wall-clock budget (upper bound)
    batch_size: int = Field(8, ge=1)  # samples per step
    lr: float = Field(2e-3, gt=0)  # peak AdamW learning rate
    weight_decay: float = Field(1e-4, ge=0)  # AdamW weight decay
    grad_clip: float = Field(1.0, gt=0)  # max global gradient norm
    val_every: int = Field(250, ge=1)  # steps between validations
    val_samples: int = Field(64, ge=1)  # validation samples (fixed seed)
    threads: int = Field(0, ge=0)  # torch CPU threads; 0 = torch default
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0  # model init and data order


def _val_losses(model, stacks, cfg: TrainLocalConfig) -> dict[str, float]:
    from liwi.training.data import StackDataset, collate
    from liwi.training.step import eval_step

    ds = StackDataset(stacks, cfg.data, seed=10_000 + cfg.seed)
    n = min(cfg.val_samples, len(ds))
    sums: dict[str, float] = {}
    batches = 0
    for start in range(0, n, cfg.batch_size):
        batch = collate([ds[i] for i in range(start, min(n, start + cfg.batch_size))])
        for k, v in eval_step(model, batch, cfg.loss).items():
            sums[k] = sums.get(k, 0.0) + v
        batches += 1
    return {k: v / batches for k, v in sums.items()}


def plot_history(history: list[dict[str, Any]], path: Path) -> None:
    """Train/val total loss against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    tr = [h for h in history if h["kind"] == "train"]
    va = [h for h in history if h["kind"] == "val"]
    ax.plot([h["step"] for h in tr], [h["total"] for h in tr], lw=0.6, label="train")
    ax.plot([h["step"] for h in va], [h["total"] for h in va], "o-", label="val")
    ax.set_xlabel("step")
    ax.set_ylabel("total loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(cfg: TrainLocalConfig, progress: bool = True) -> Path:
    """Train and return the checkpoint path; stopped by Ctrl-C or SIGTERM, it saves what
    was trained and raises :class:`~liwi.training.loop.TrainingStopped`."""
    import numpy as np
    import torch

    from liwi.model import save_checkpoint
    from liwi.training.data import StackDataset, collate, rows_from_table
    from liwi.training.init import initial_model
    from liwi.training.loop import Budget, run_budgeted
    from liwi.training.step import make_optimizer

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = (
        cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    torch.manual_seed(cfg.seed)
    model = initial_model(cfg.preset, cfg.model, cfg.init_from)
    if cfg.data.crop % model.config.multiple:
        raise ValueError(f"data.crop {cfg.data.crop} must be a multiple of {model.config.multiple}")
    model = model.to(device)
    train = rows_from_table(cfg.tables, split="train")
    val = rows_from_table(cfg.tables, split="val") or train[: cfg.val_samples]
    ds = StackDataset(train, cfg.data, seed=cfg.seed)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = run_budgeted(
        model,
        opt,
        cfg.loss,
        Budget.of(cfg),
        len(ds),
        lambda idx: collate([ds[i] for i in idx]),
        lambda: _val_losses(model, val, cfg),
        out.with_suffix(".history.jsonl"),
        np.random.default_rng(cfg.seed),
        on_epoch=ds.set_epoch,
        progress=progress,
    )
    meta = {
        "trained_by": "liwi.training.local",
        "train_config": cfg.to_dict(),
        "steps": result.steps,
        "minutes": result.minutes,
        "n_train_stacks": len(train),
        "final_val": result.final_val,
        "device": device,
        "torch": torch.__version__,
        "stopped_by": result.stopped_by,  # Ctrl-C / SIGTERM before the budget ran out
    }
    save_checkpoint(model.cpu(), out, meta=meta)
    plot_history(result.history, out.with_suffix(".loss.png"))
    result.raise_if_stopped(out)
    return out
