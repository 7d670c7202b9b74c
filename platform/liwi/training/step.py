"""One optimisation step and one evaluation step, independent of the training driver.

The local loop and the Ray Train job both call :func:`train_step`; it handles the
device move, bf16 autocast on CUDA, the loss, backward, gradient clipping and the
optimiser update, and returns plain floats for logging.
"""

from __future__ import annotations

from typing import Any

from liwi.losses import LossConfig, compute_losses

# Keys of a batch that go into the model; the rest are targets.
INPUT_KEYS = ("image", "prompt")


def batch_to_device(batch: dict[str, Any], device) -> dict[str, Any]:
    """Move every tensor of ``batch`` to ``device`` (non-blocking)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _autocast(device):
    import contextlib

    import torch

    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def forward_losses(model, batch: dict[str, Any], loss_config: LossConfig) -> dict[str, Any]:
    """Run the model on ``batch`` (already on its device) and compute the loss terms."""
    device = batch["image"].device
    extra = {"saliency": batch["saliency"]} if "saliency" in batch else {}  # model v2's cache
    with _autocast(device):
        pred = model(batch["image"], batch["prompt"], **extra)
    return compute_losses(pred, batch, loss_config)


def train_step(
    model,
    optimizer,
    batch: dict[str, Any],
    loss_config: LossConfig,
    *,
    grad_clip: float | None = 1.0,
) -> dict[str, float]:
    """One update of ``model`` on ``batch``; returns each loss term and ``grad_norm``."""
    import torch

    device = next(model.parameters()).device
    batch = batch_to_device(batch, device)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    losses = forward_losses(model, batch, loss_config)
    losses["total"].backward()
    if grad_clip:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    else:
        norm = torch.zeros(())
    optimizer.step()
    out = {k: float(v.detach()) for k, v in losses.items()}
    out["grad_norm"] = float(norm)
    return out


def eval_step(model, batch: dict[str, Any], loss_config: LossConfig) -> dict[str, float]:
    """Loss terms of ``model`` on ``batch`` without updating it."""
    import torch

    device = next(model.parameters()).device
    batch = batch_to_device(batch, device)
    model.eval()
    with torch.no_grad():
        losses = forward_losses(model, batch, loss_config)
    return {k: float(v) for k, v in losses.items()}


def make_optimizer(model, lr: float, weight_decay: float):
    """AdamW over every parameter of ``model``."""
    import torch

    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def lr_factor(progress: float, warmup: float = 0.03, floor: float = 0.05) -> float:
    """Learning-rate multiplier at ``progress`` ∈ [0, 1]: linear warm-up, cosine to ``floor``."""
    import math

    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return max(progress / warmup, 0.01)
    t = (progress - warmup) / max(1e-9, 1.0 - warmup)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def set_lr(optimizer, lr: float) -> None:
    """Set every group's learning rate to ``lr`` times its ``lr_scale`` (1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
