"""Training objectives of the decomposition model, each weighted and switchable.

Every term is a function of the prediction and the target dicts (B×C×H×W tensors:
``alpha`` B×1, ``color``/``background``/``image`` B×3, ``shadow`` B×1 or B×3 attenuation)
and returns a scalar that is 0 for a perfect prediction. :func:`compute_losses` weights
them by :class:`LossConfig`; a weight of 0 switches a term off (it is not even computed),
so an ablation is one flag.

Samples whose ``degraded`` flag is set (their prompt mask and object boundary were
eroded, dilated or blurred by :mod:`liwi.training.data`) are scored only by the
degradation-restoration term: recover the *clean* alpha and colour.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Pixels whose ground-truth attenuation (channel mean) is below this are "in the shadow".
SHADOW_REGION_THRESHOLD = 0.9
EPS = 1e-6


class LossConfig(BaseModel):
    """Weights of the loss terms; 0 switches a term off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recomposition: float = Field(1.0, ge=0)  # α·F + (1−α)·B⊙S must reproduce the input
    background_l1: float = Field(1.0, ge=0)  # clean background, everywhere
    color_l1: float = Field(1.0, ge=0)  # object colour where ground-truth alpha > 0
    alpha_l1: float = Field(1.0, ge=0)  # alpha matte
    alpha_gradient: float = Field(0.5, ge=0)  # finite-difference gradients of alpha
    alpha_laplacian: float = Field(1.0, ge=0)  # 3 band-pass Laplacian levels of alpha
    # 1 − soft IoU of alpha per sample: scale-free, so small objects weigh as much as big
    # ones and "alpha = 0 everywhere" (the L1 optimum before objects are found) costs 1.
    alpha_iou: float = Field(1.0, ge=0)
    shadow_attenuation: float = Field(1.0, ge=0)  # shadow-guided: explicit attenuation S
    shadow_background: float = Field(2.0, ge=0)  # shadow-guided: shadow-free B in shadow
    # 1 − soft IoU of the darkening 1 − S per sample: like alpha_iou for the shadow, so a
    # small shadow weighs as much as a big one; L1 alone, mostly over shadow-free pixels,
    # lets the network under-predict shadow extent. 0 by default (the shipped stages 1–3
    # trained without it).
    shadow_iou: float = Field(0.0, ge=0)
    degradation_restoration: float = Field(1.0, ge=0)  # clean α/F from degraded inputs

    @classmethod
    def ablation(cls, *, shadow_guided: bool = True, degradation: bool = True) -> LossConfig:
        """The default weights with the two LiWi objectives switched on or off."""
        off: dict[str, float] = {}
        if not shadow_guided:
            off |= {"shadow_attenuation": 0.0, "shadow_background": 0.0, "shadow_iou": 0.0}
        if not degradation:
            off |= {"degradation_restoration": 0.0}
        return cls(**off)


def _masked_mean(loss_map, pixel_mask=None, sample_weight=None):
    """Mean of ``loss_map`` (B×C×H×W) over weighted pixels; 0 when the weights are all 0."""
    import torch

    w = torch.ones_like(loss_map[:, :1])
    if pixel_mask is not None:
        w = w * pixel_mask
    if sample_weight is not None:
        w = w * sample_weight.view(-1, 1, 1, 1)
    denom = w.sum() * loss_map.shape[1]
    return (loss_map * w).sum() / denom.clamp_min(EPS)


def composite(pred: dict) -> object:
    """The prediction recomposed: α·F + (1 − α)·(B ⊙ S)."""
    from liwi.model.compose import composite_one

    return composite_one(pred["background"], pred["color"], pred["alpha"], pred["shadow"])


def recomposition_loss(pred, target, sample_weight=None):
    """L1 between the recomposed prediction and the input image."""
    return _masked_mean((composite(pred) - target["image"]).abs(), None, sample_weight)


def background_l1(pred, target, sample_weight=None):
    """L1 of the clean background over the whole image."""
    return _masked_mean((pred["background"] - target["background"]).abs(), None, sample_weight)


def color_l1(pred, target, sample_weight=None):
    """L1 of the object colour over pixels where the ground-truth alpha is > 0."""
    inside = (target["alpha"] > 0).float()
    return _masked_mean((pred["color"] - target["color"]).abs(), inside, sample_weight)


def alpha_l1(pred, target, sample_weight=None):
    """L1 of the alpha matte."""
    return _masked_mean((pred["alpha"] - target["alpha"]).abs(), None, sample_weight)


def _grads(x):
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def alpha_gradient(pred, target, sample_weight=None):
    """L1 between horizontal and vertical finite differences of predicted and true alpha."""
    pgx, pgy = _grads(pred["alpha"])
    tgx, tgy = _grads(target["alpha"])
    return 0.5 * (
        _masked_mean((pgx - tgx).abs(), None, sample_weight)
        + _masked_mean((pgy - tgy).abs(), None, sample_weight)
    )


def _laplacian_pyramid(x, levels: int = 3):
    from torch.nn import functional as F

    out = []
    for _ in range(levels):
        if min(x.shape[-2:]) < 2:
            break
        low = F.avg_pool2d(x, 2)
        up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out.append(x - up)
        x = low
    return out  # band-pass levels only; the low-pass rest is what alpha_l1 scores


def alpha_laplacian(pred, target, sample_weight=None):
    """L1 between the band-pass levels of the Laplacian pyramids of alpha (edges, detail)."""
    total = 0.0
    pyr_p, pyr_t = _laplacian_pyramid(pred["alpha"]), _laplacian_pyramid(target["alpha"])
    for p, t in zip(pyr_p, pyr_t, strict=True):
        total = total + _masked_mean((p - t).abs(), None, sample_weight)
    return total


def shadow_region(target):
    """B×1×H×W mask of ground-truth shadow pixels (mean attenuation < threshold)."""
    return (target["shadow"].mean(dim=1, keepdim=True) < SHADOW_REGION_THRESHOLD).float()


def shadow_attenuation(pred, target, sample_weight=None):
    """Shadow-guided: L1 of the attenuation map S everywhere (grey pred vs RGB target ok)."""
    diff = (pred["shadow"] - target["shadow"]).abs()
    return _masked_mean(diff, None, sample_weight)


def shadow_background(pred, target, sample_weight=None):
    """Shadow-guided: L1 of the shadow-free background inside the ground-truth shadow."""
    diff = (pred["background"] - target["background"]).abs()
    return _masked_mean(diff, shadow_region(target), sample_weight)


def degradation_restoration(pred, target, sample_weight=None):
    """Clean alpha (L1 + gradients) and colour recovered from degraded prompts/boundaries."""
    return (
        alpha_l1(pred, target, sample_weight)
        + alpha_gradient(pred, target, sample_weight)
        + color_l1(pred, target, sample_weight)
    )


def alpha_iou(pred, target, sample_weight=None):
    """Mean over samples of 1 − Σmin(α, α̂)/Σmax(α, α̂); empty targets score mean(α̂)."""
    return _soft_iou_loss(pred["alpha"], target["alpha"], sample_weight)


def shadow_iou(pred, target, sample_weight=None):
    """Shadow-guided: 1 − soft IoU of the darkening 1 − mean(S) per sample; shadow-free
    targets score the mean predicted darkening."""
    dark_p = 1.0 - pred["shadow"].mean(dim=1, keepdim=True)
    dark_t = 1.0 - target["shadow"].mean(dim=1, keepdim=True)
    return _soft_iou_loss(dark_p.clamp_min(0.0), dark_t.clamp_min(0.0), sample_weight)


def _soft_iou_loss(pred_map, target_map, sample_weight=None):
    """Mean over samples of 1 − Σmin/Σmax of two non-negative maps; a (near) empty target
    scores the prediction's mean instead (anything predicted there is spurious)."""
    import torch

    p, t = pred_map.flatten(1), target_map.flatten(1)
    inter = torch.minimum(p, t).sum(1)
    union = torch.maximum(p, t).sum(1)
    has_object = t.sum(1) > 1e-3
    per_sample = torch.where(has_object, 1.0 - inter / union.clamp_min(EPS), p.mean(1))
    if sample_weight is None:
        return per_sample.mean()
    w = sample_weight.view(-1).float()
    return (per_sample * w).sum() / w.sum().clamp_min(EPS)


# Terms scored on the clean samples, in LossConfig field order.
CLEAN_TERMS = {
    "recomposition": recomposition_loss,
    "background_l1": background_l1,
    "color_l1": color_l1,
    "alpha_l1": alpha_l1,
    "alpha_gradient": alpha_gradient,
    "alpha_laplacian": alpha_laplacian,
    "alpha_iou": alpha_iou,
    "shadow_attenuation": shadow_attenuation,
    "shadow_background": shadow_background,
    "shadow_iou": shadow_iou,
}


def compute_losses(pred: dict, target: dict, config: LossConfig | None = None) -> dict:
    """Every enabled term (unweighted) plus ``total`` (weighted sum), as 0-dim tensors.

    ``target["degraded"]`` (B, optional) marks degraded samples: they feed only the
    degradation-restoration term; the rest feed every other term.
    """
    import torch

    config = config or LossConfig()
    pred = {k: v.float() for k, v in pred.items()}
    degraded = target.get("degraded")
    if degraded is None:
        degraded = torch.zeros(target["image"].shape[0], device=target["image"].device)
    degraded = degraded.float()
    clean = 1.0 - degraded
    out: dict = {}
    total = torch.zeros((), device=target["image"].device)
    for name, fn in CLEAN_TERMS.items():
        weight = getattr(config, name)
        if weight == 0:
            continue
        out[name] = fn(pred, target, clean)
        total = total + weight * out[name]
    if config.degradation_restoration > 0:
        out["degradation_restoration"] = degradation_restoration(pred, target, degraded)
        total = total + config.degradation_restoration * out["degradation_restoration"]
    out["total"] = total
    return out
