"""Fine-tune model v2 (:class:`~liwi.model.u2layernet.U2LayerNet`) on a trunk cache.

On a CPU the trunk is frozen (its saliency maps come from
:mod:`liwi.training.trunk_cache`) and the LiWi heads learn; with ``model.train_trunk`` (a
GPU) the trunk trains too, at ``lr × trunk_lr_scale``, and the cache serves the prompt
simulation only. Every LiWi objective is on:

* **shadow-guided learning** — the explicit attenuation S (``shadow_attenuation``) and
  the shadow-free background inside the shadow (``shadow_background``; the heads'
  background is the input with S lifted, so both terms teach S);
* **degradation-restoration** — a share ``degrade_prob`` of samples gets an eroded,
  dilated or blurred mask prompt and a blurred object boundary in the input, and is
  scored on the clean alpha and colour;
* the alpha terms (L1, gradient, Laplacian, soft IoU) and the decontaminated colour.

The other samples are prompted the way the predictor prompts at inference: with the
trunk's own stretched saliency kept around the true object (``prior_prompt_prob``) — an
imperfect instance mask — or with the true mask.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import Field

from liwi.config import JobConfig
from liwi.losses import LossConfig

# Loss weights of v2: the background is I / S (the hole under the object is the
# inpainter's), so its whole-image L1 and the recomposition term, which would ask the
# lifted input to equal the hidden background, are off.
V2_LOSS = LossConfig(background_l1=0.0, recomposition=0.0)


class FinetuneConfig(JobConfig):
    """Config of ``liwi finetune`` (YAML under ``jobs/configs/``)."""

    tables: list[str] = Field(min_length=1)  # layer tables (folder or s3://…) with splits
    cache: str = "runs/v2/cache"  # trunk cache (train/, val/), built when missing or stale
    out: str = "runs/v2/liwi-v2.pt"  # checkpoint path; history/plot go beside it
    model: dict[str, Any] = Field(default_factory=dict)  # U2LayerNetConfig fields
    init_from: str | None = None  # warm start: a v2 checkpoint (model URI) to continue from
    # the trunk's starting weights from a state-dict file instead of the registry's ONNX:
    # a torch state dict (.pt) or the stem of int8 parts (liwi.model.int8_state), which is
    # how the 176-MB U²-Net trunk travels to a lent GPU machine
    trunk_state: str | None = None
    loss: LossConfig = V2_LOSS
    crop: int = Field(256, ge=64)  # random square crop of the cached images (multiple of 32)
    steps: int = Field(2000, ge=1)  # optimisation steps (upper bound)
    max_minutes: float = Field(40.0, gt=0)  # wall-clock budget (upper bound)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(2e-3, gt=0)  # peak AdamW learning rate of the heads
    # with model.train_trunk: the trunk's learning rate as a share of ``lr`` (pretrained
    # weights move slowly; the zero-initialised heads start from nothing)
    trunk_lr_scale: float = Field(0.05, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    prior_prompt_prob: float = Field(0.5, ge=0, le=1)  # prompt = saliency near the object
    degrade_prob: float = Field(0.3, ge=0, le=1)  # degraded prompt + boundary, restoration
    degrade_max_px: int = Field(6, ge=1)  # largest erosion/dilation/blur radius, pixels
    prior_grow_px: int = Field(9, ge=1)  # how far the saliency prompt reaches past the object
    val_every: int = Field(100, ge=1)
    val_samples: int = Field(96, ge=1)
    threads: int = Field(0, ge=0)  # torch CPU threads; 0 = torch default
    device: str = "auto"  # auto | cpu | cuda (with model.train_trunk: true, all weights train)
    seed: int = 0


def _crops(a, idx, y: int, x: int, c: int, device: str) -> Any:
    """Rows ``idx`` of a uint8 N×C×S×S array, cropped to c×c at (y, x) and moved as uint8
    (a quarter of float32's bytes), then float in [0, 1] on ``device``."""
    import numpy as np
    import torch

    crops = np.stack([a[i][:, y : y + c, x : x + c] for i in idx])
    return torch.from_numpy(crops).to(device, non_blocking=True).float() / 255.0


def _grow(mask, px: int):
    from torch.nn import functional as F

    return F.max_pool2d(mask, 2 * px + 1, stride=1, padding=px)


def _degrade(mask, rng, max_px: int):
    """Erode, dilate or blur each mask of a B×1×H×W batch by a random radius."""
    import torch
    from torch.nn import functional as F

    out = []
    for m in mask:
        r = int(rng.integers(1, max_px + 1))
        op = int(rng.integers(0, 3))
        m = m[None]
        if op == 0:
            m = -_grow(-m, r)
        elif op == 1:
            m = _grow(m, r)
        else:
            m = F.avg_pool2d(m, 2 * r + 1, stride=1, padding=r, count_include_pad=False)
        out.append(m[0])
    return torch.stack(out)


def make_batch(
    cache: dict,
    idx: list[int],
    cfg: FinetuneConfig,
    rng,
    train: bool,
    train_trunk: bool = False,
    device: str = "cpu",
) -> dict:
    """A batch of crops with simulated prompts (see the module docstring), built on
    ``device``: beside a GPU the pooling below is what would keep it waiting."""
    import torch
    from torch.nn import functional as F

    size = cache["image"].shape[-1]
    c = min(cfg.crop, size)
    y, x = (int(v) for v in rng.integers(0, size - c + 1, size=2)) if train else (0, 0)
    keys = ("image", "alpha", "color", "background", "shadow", "saliency")
    batch = {k: _crops(cache[k], idx, y, x, c, device) for k in keys}
    if train and rng.random() < 0.5:
        batch = {k: v.flip(-1) for k, v in batch.items()}
    alpha = batch["alpha"]
    b = alpha.shape[0]
    draw = torch.from_numpy(rng.random(b).astype("float32")).to(alpha.device)
    degraded = draw < cfg.degrade_prob
    prior_like = (draw >= cfg.degrade_prob) & (draw < cfg.degrade_prob + cfg.prior_prompt_prob)
    from liwi.model.u2layernet import stretched_saliency

    sal = stretched_saliency(batch["saliency"][:, :1])
    prior_mask = sal * _grow(alpha, cfg.prior_grow_px)
    # where the trunk misses most of the object, a prior-like prompt would point at nothing
    missed = (prior_mask * alpha).sum((1, 2, 3)) < 0.5 * alpha.sum((1, 2, 3))
    mask = alpha.clone()
    use_prior = prior_like & ~missed
    mask[use_prior] = prior_mask[use_prior]
    if degraded.any():
        mask[degraded] = _degrade(alpha[degraded], rng, cfg.degrade_max_px)
        img = batch["image"][degraded]
        band = (_grow(alpha[degraded], 3) - (-_grow(-alpha[degraded], 3))).clamp(0, 1)
        blurred = F.avg_pool2d(img, 5, stride=1, padding=2, count_include_pad=False)
        batch["image"][degraded] = band * blurred + (1 - band) * img
    prompt = torch.zeros(b, 3, c, c, device=alpha.device)
    prompt[:, :1] = mask
    batch["prompt"] = prompt
    batch["degraded"] = degraded.float()
    if train_trunk:  # the trunk trains: it must see the (possibly blurred) input itself
        del batch["saliency"]
    return batch


SPLITS = ("train", "val")


def ensure(tables: list[str], split: str, folder: Path, model, with_torch: bool = False) -> dict:
    """The trunk cache of ``split``, built first when it is missing or was built from other
    tables, size or trunk weights. ``with_torch``: the model's own torch trunk computes it
    (on the model's device) instead of onnxruntime on the registry's file."""
    from liwi.training.trunk_cache import build, load

    size, weight = model.config.resolution, model.config.trunk
    want = {"tables": list(tables), "split": split, "size": size, "weight": weight}
    meta = folder / "meta.json"
    if not meta.is_file() or any(json.loads(meta.read_text()).get(k) != v for k, v in want.items()):
        trunk = model.trunk if with_torch else None
        workers = max(1, min(16, (os.cpu_count() or 1) - 1)) if with_torch else 1
        build(tables, split, folder, size=size, weight=weight, trunk=trunk, workers=workers)
    return load(folder)


def _model(cfg: FinetuneConfig):
    """The network to fine-tune: a warm start, or the trunk's pretrained weights + new heads."""
    from liwi.model.u2layernet import U2LayerNet, U2LayerNetConfig, pretrained

    if cfg.init_from:
        from liwi.model import build_model
        from liwi.predictor import resolve_checkpoint

        model = build_model(checkpoint=resolve_checkpoint(cfg.init_from))
        if not isinstance(model, U2LayerNet):
            raise ValueError(f"init_from {cfg.init_from} is not a model v2 (u2layernet) checkpoint")
        return model
    if cfg.trunk_state is None:
        return pretrained(U2LayerNetConfig(**cfg.model))
    import torch

    from liwi.model import int8_state

    model = U2LayerNet(U2LayerNetConfig(**cfg.model))
    path = Path(cfg.trunk_state)
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        state = int8_state.unpack(int8_state.load_parts(path))
    model.trunk.load_state_dict(state)
    return model


def param_groups(model, cfg: FinetuneConfig) -> list[dict]:
    """AdamW groups: the heads at ``lr``, a trainable trunk at ``lr × trunk_lr_scale``."""
    heads = [
        p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("trunk.")
    ]
    trunk = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("trunk.")]
    groups = [{"params": heads, "lr_scale": 1.0}]
    if trunk:
        groups.append({"params": trunk, "lr_scale": cfg.trunk_lr_scale})
    return groups


def _val(model, cache, cfg: FinetuneConfig, device: str = "cpu") -> dict[str, float]:
    import numpy as np

    from liwi.training.step import eval_step

    n = min(cfg.val_samples, len(cache["image"]))
    rng = np.random.default_rng(12345)  # the same prompts at every validation
    sums: dict[str, float] = {}
    batches = 0
    for start in range(0, n, cfg.batch_size):
        idx = list(range(start, min(n, start + cfg.batch_size)))
        batch = make_batch(cache, idx, cfg, rng, False, model.config.train_trunk, device)
        for k, v in eval_step(model, batch, cfg.loss).items():
            sums[k] = sums.get(k, 0.0) + v
        batches += 1
    return {k: v / batches for k, v in sums.items()}


def run(cfg: FinetuneConfig, progress: bool = True) -> Path:
    """Fine-tune the heads; write and return the checkpoint (trunk included). Stopped by
    Ctrl-C or SIGTERM, it saves what was trained and raises ``TrainingStopped``."""
    import numpy as np
    import torch

    from liwi.model import save_checkpoint
    from liwi.training.local import plot_history
    from liwi.training.loop import Budget, run_budgeted

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.crop % 32:
        raise ValueError(f"crop {cfg.crop} must be a multiple of 32")
    torch.manual_seed(cfg.seed)
    model = _model(cfg)
    device = cfg.device if cfg.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    # our torch trunk builds the cache on a GPU, and wherever the registry's ONNX file may
    # be absent (the trunk came from ``trunk_state``)
    with_torch = device.startswith("cuda") or cfg.trunk_state is not None
    train, val = (
        ensure(cfg.tables, split, Path(cfg.cache) / split, model, with_torch) for split in SPLITS
    )
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    result = run_budgeted(
        model,
        opt,
        cfg.loss,
        Budget.of(cfg),
        len(train["image"]),
        lambda idx: make_batch(train, idx, cfg, rng, True, model.config.train_trunk, device),
        lambda: _val(model, val, cfg, device),
        out.with_suffix(".history.jsonl"),
        rng,
        validate_first=True,
        desc="finetune",
        progress=progress,
    )
    meta = {
        "trained_by": "liwi.training.finetune",
        "train_config": cfg.to_dict(),
        "steps": result.steps,
        "minutes": result.minutes,
        "cache": train["meta"],
        "initial_val": result.history[0],
        "final_val": result.final_val,
        "torch": torch.__version__,
        "device": device,
        "stopped_by": result.stopped_by,  # Ctrl-C / SIGTERM before the budget ran out
    }
    save_checkpoint(model.cpu(), out, meta=meta)
    plot_history(result.history, out.with_suffix(".loss.png"))
    result.raise_if_stopped(out)
    return out
