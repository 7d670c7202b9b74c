"""Fine-tune the salient-object prior on layer tables: objects without their shadows.

U²-Netp was trained to find salient objects in photos (DUTS), where a cast shadow is often
part of what was labelled; LiWi's layers keep the shadow apart from its object, and the
rendered scenes show the prior taking a dark cast shadow for part of the object and
merging two objects through the shadow between them (``benchmarks/RESULTS.md``). The
prior plans every object the predictor peels, so its alpha bounds the union alpha.

``run(PriorFinetuneConfig)`` trains our torch :class:`~liwi.model.u2layernet.U2Trunk`
holding the registered weight on each row's *union of object alphas* (shadows excluded),
with the loss U²-Net was trained with (binary cross-entropy on the fused map and all six
side maps) plus a soft-IoU term on the fused map, and writes the result as the same ONNX
graph with new convolution weights (:func:`~liwi.model.u2layernet.trunk_into_onnx`), so
the predictor runs it on onnxruntime exactly as it runs the original (``--prior FILE``).
What is written is a weight-space blend of the pretrained and the fine-tuned weights
(``mix``; the unblended state dict is kept beside it). Validation scores what the
predictor reads: the soft IoU of :meth:`SalientPrior.alpha` on the val rows (of the
fine-tuned weights; blends are scored by ``benchmarks/prior_quality.py``).

``background_photos`` keeps only rows whose background photos hold no salient object of
their own (a cat used as background teaches the prior that a cat is background), and
``blend_with`` lets a second stage blend with the pretrained weight rather than the first
stage's. The two shipped configs made the default prior ``u2netp-liwi``; its weakness,
close-up animals under crops, is in ``docs/weights.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from liwi.config import JobConfig
from liwi.training.prior_photos import PhotoTeacher, load_photos


class PriorFinetuneConfig(JobConfig):
    """Config of ``liwi finetune-prior`` (YAML under ``jobs/configs/``)."""

    tables: list[str] = Field(min_length=1)  # layer tables (folder or s3://…), train/val splits
    weight: str = "u2netp"  # registered weight (or ONNX file) to start from
    trunk: str = "u2netp"  # its architecture (liwi.model.u2layernet.TRUNKS)
    out: str = "runs/prior/u2netp-liwi.onnx"  # the fine-tuned graph; history/plot beside it
    side: int = Field(256, ge=64, multiple_of=32)  # training input side: the prior runs at
    # 320, a fully convolutional net transfers; 256 makes a step 1.6× cheaper on the CPU
    flip_prob: float = Field(0.5, ge=0, le=1)  # horizontal flips (scenes have no handedness)
    zoom_prob: float = Field(0.5, ge=0, le=1)  # close-ups: a square crop around the objects;
    # without them the prior learns that nothing frame-filling is an object (the sample cat)
    zoom_min: float = Field(0.6, gt=0)  # crop side ÷ the objects' box side: < 1 cuts them
    zoom_max: float = Field(1.4, gt=0)  # at the frame's edges, > 1 leaves a margin
    iou_weight: float = Field(1.0, ge=0)  # soft-IoU term on the fused map beside the 7 BCEs
    background_photos: list[str] | None = None  # train only on rows whose background (or
    # floor and wall) photos are all in this list; None = every row. A photo with a salient
    # object of its own (the cat, the astronaut) used as background teaches the prior that
    # such an object is background: the sample photos broke exactly there
    photos: list[str] | None = None  # folders or files of unlabelled photographs with
    # objects of their own; their targets are the teacher's maps (distillation), so the
    # fine-tune learns the tables' shadows without unlearning photographed objects
    photo_prob: float = Field(0.0, ge=0, le=1)  # share of samples drawn from `photos`
    photo_crop_min: float = Field(0.55, gt=0, le=1)  # a photo sample is the whole photo or,
    # half the time, a crop this share (per side, up to 1) of it: close-ups cut by the frame
    teacher: str | None = None  # the weight whose maps (its second opinion included) are the
    # photos' targets; None = `weight`, the starting point
    blend_with: str | None = None  # the weight the written blend mixes with (None: `weight`);
    # a second stage that starts from a first stage's unblended graph blends with u2netp
    mix: float = Field(0.2, ge=0, le=1)  # the written weights: (1 − mix)·pretrained +
    # mix·fine-tuned. On synthetic tables, fine-tuned alone forgets photographed objects
    # (split D 0.81 → 0.66) and frame-filling ones (the sample cat: its eyes only); blends
    # keep more of both (benchmarks/RESULTS.md, thirteenth session)
    steps: int = Field(100_000, ge=1)  # optimisation steps (upper bound)
    max_minutes: float = Field(45.0, gt=0)  # wall-clock budget (upper bound)
    batch_size: int = Field(4, ge=1)  # samples per step
    lr: float = Field(1e-4, gt=0)  # peak AdamW lr: a tenth of U²-Net's own, a warm start
    weight_decay: float = Field(0.0, ge=0)  # none: the pretrained weights are the prior
    grad_clip: float = Field(1.0, gt=0)  # max global gradient norm
    val_every: int = Field(100, ge=1)  # steps between validations
    val_samples: int = Field(48, ge=1)  # validation rows (the first of the val split)
    threads: int = Field(0, ge=0)  # torch CPU threads; 0 = torch default
    seed: int = 0  # data order and flips

    @model_validator(mode="after")
    def _photos_when_drawn(self) -> PriorFinetuneConfig:
        if self.photo_prob > 0 and not self.photos:
            raise ValueError("photo_prob > 0 needs photos: folders or files of photographs")
        return self


def background_photos(row: dict) -> set[str]:
    """The photos a synthetic row's background was made of (background, floor, wall), from
    its generator's trace; empty for rows that record none (photos labelled by ADD)."""
    trace = row.get("agent_trace") or "[]"
    names: set[str] = set()
    for step in json.loads(trace) if isinstance(trace, str) else trace:
        params = step.get("params") or {}
        for key in ("background", "floor", "wall"):
            part = params.get(key)
            if isinstance(part, dict) and part.get("photo"):
                names.add(str(part["photo"]))
    return names


def keeps_background(row: dict, allowed: list[str] | None) -> bool:
    """Whether every background photo of ``row`` is allowed; a name matches itself or the
    same file under a folder prefix (the renderer writes ``<folder>_<file>``)."""
    if allowed is None:
        return True
    return all(
        any(name == ok or name.endswith("_" + ok) for ok in allowed)
        for name in background_photos(row)
    )


def photo_and_union(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """A row's photo (its degraded flat image where it has one) and its union alpha: the
    alpha of its objects composited together, shadows excluded (``LayerStack.foreground``,
    what the evaluator scores the union against)."""
    from liwi.training.data import decode_row

    stack, flat = decode_row(row)
    return (flat if flat is not None else stack.composite()), stack.foreground()[..., 3]


def zoom_box(union: np.ndarray, rng: np.random.Generator, fill: tuple[float, float]):
    """A square window (y0, x0, side) around the objects whose side is ``U(fill)`` × their
    box's longer side, jittered, clipped to the image: the objects then fill the frame and
    are often cut by its edges, as a close-up photo's are (the tables' scenes have none)."""
    h, w = union.shape
    ys, xs = np.nonzero(union > 0.5)
    if len(ys) == 0:
        return 0, 0, min(h, w)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = int(np.clip(max(y1 - y0, x1 - x0) * rng.uniform(*fill), 16, min(h, w)))
    cy = (y0 + y1) / 2 + rng.uniform(-0.25, 0.25) * side
    cx = (x0 + x1) / 2 + rng.uniform(-0.25, 0.25) * side
    top = int(np.clip(round(cy - side / 2), 0, h - side))
    left = int(np.clip(round(cx - side / 2), 0, w - side))
    return top, left, side


def make_batch(
    rows: list[dict],
    cfg: PriorFinetuneConfig,
    rng: np.random.Generator,
    train: bool = True,
    teacher: PhotoTeacher | None = None,
):
    """Images B×3×side×side in [0, 1] and targets B×1×side×side (torch tensors): each
    row's union of object alphas or, with a ``teacher`` and probability ``photo_prob``, a
    photo and the teacher's map instead. ``train`` draws flips and close-up crops
    (:func:`zoom_box`), else the whole scene."""
    import torch
    from torch.nn import functional as F

    def at_side(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a, np.float32))
        t = t.permute(2, 0, 1) if t.ndim == 3 else t[None]
        return F.interpolate(t[None], (cfg.side, cfg.side), mode="bilinear", antialias=True)[0]

    images, targets = [], []
    for row in rows:
        if teacher is not None and train and rng.random() < cfg.photo_prob:
            photo, target = teacher.sample(rng, cfg.photo_crop_min)
        else:
            photo, target = photo_and_union(row)
            if train and rng.random() < cfg.zoom_prob:
                top, left, c = zoom_box(target, rng, (cfg.zoom_min, cfg.zoom_max))
                photo = photo[top : top + c, left : left + c]
                target = target[top : top + c, left : left + c]
        both = torch.cat([at_side(photo), at_side(target)])
        if train and rng.random() < cfg.flip_prob:
            both = both.flip(-1)
        images.append(both[:3])
        targets.append(both[3:].clamp(0.0, 1.0))
    return {"image": torch.stack(images), "target": torch.stack(targets)}


def prior_losses(maps, target, iou_weight: float) -> dict[str, Any]:
    """U²-Net's deep supervision (BCE on the fused map and the six side maps) + soft IoU."""
    from torch.nn import functional as F

    p = maps.clamp(1e-6, 1.0 - 1e-6)  # the trunk returns probabilities
    bce = sum(F.binary_cross_entropy(p[:, i : i + 1], target) for i in range(p.shape[1]))
    fused = p[:, :1]
    inter = (fused * target).sum(dim=(1, 2, 3))
    union = (fused + target - fused * target).sum(dim=(1, 2, 3))
    iou = 1.0 - (inter / union.clamp_min(1e-6)).mean()
    return {"bce": bce, "iou": iou, "total": bce + iou_weight * iou}


def prior_step(trunk, opt, batch: dict, cfg: PriorFinetuneConfig, *, grad_clip: float):
    """One update of the trunk (the step callable of :func:`run_budgeted`)."""
    import torch

    trunk.train()
    opt.zero_grad(set_to_none=True)
    losses = prior_losses(trunk(batch["image"]), batch["target"], cfg.iou_weight)
    losses["total"].backward()
    norm = torch.nn.utils.clip_grad_norm_(trunk.parameters(), grad_clip)
    opt.step()
    return {**{k: float(v.detach()) for k, v in losses.items()}, "grad_norm": float(norm)}


def alpha_scores(prior, rows: list[dict]) -> list[float]:
    """Soft IoU of ``prior.alpha`` (what the predictor reads) against each row's union."""
    from liwi.metrics.layers import map_soft_iou

    scores = []
    for row in rows:
        photo, union = photo_and_union(row)
        small = prior.small(photo).transpose(2, 0, 1)[None]
        # batch_maps: onnxruntime as the predictor runs it, or the given torch trunk
        alpha = prior.alpha(photo, prior.batch_maps(small)[0])
        scores.append(map_soft_iou(alpha, union))
    return scores


def alpha_iou(trunk, rows: list[dict]) -> float:
    """Mean soft IoU of the alpha of a torch ``trunk`` being trained on ``rows``."""
    from liwi.priors.salient import SalientPrior

    trunk.eval()
    return float(np.mean(alpha_scores(SalientPrior(trunk=trunk), rows)))


def validate(
    trunk, rows: list[dict], cfg: PriorFinetuneConfig, teacher: PhotoTeacher | None = None
) -> dict[str, float]:
    """The training losses on ``rows`` (no flips), the alpha's soft IoU and, with a
    ``teacher``, the alpha's agreement with the teacher's on the whole photos."""
    import torch

    trunk.eval()
    sums: dict[str, float] = {}
    rng = np.random.default_rng(0)
    for start in range(0, len(rows), cfg.batch_size):
        batch = make_batch(rows[start : start + cfg.batch_size], cfg, rng, train=False)
        with torch.no_grad():
            losses = prior_losses(trunk(batch["image"]), batch["target"], cfg.iou_weight)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(batch["image"])
    out = {**{k: v / len(rows) for k, v in sums.items()}, "alpha_soft_iou": alpha_iou(trunk, rows)}
    if teacher is not None:
        out["photo_agreement"] = teacher.agreement(trunk)
    return out


def blend(pretrained: dict, tuned: dict, mix: float) -> dict:
    """Weight-space blend of two state dicts of one network: (1 − mix)·a + mix·b."""
    return {
        k: (1.0 - mix) * v + mix * tuned[k] if v.is_floating_point() else v
        for k, v in pretrained.items()
    }


def write_blend(
    trunk, pretrained: dict, tuned: dict, mix: float, source: Path, out: Path, meta: dict
) -> None:
    """Load the blend of ``pretrained`` and ``tuned`` into ``trunk`` and write it into a copy
    of the ONNX graph at ``source`` (the trunk's own weight), ``meta`` as its ``liwi``
    metadata, at ``out``."""
    import onnx

    from liwi.model.u2layernet import trunk_into_onnx

    trunk.load_state_dict(blend(pretrained, tuned, mix))
    model = onnx.load(str(source))
    trunk_into_onnx(trunk, model)
    model.metadata_props.add(key="liwi", value=json.dumps(meta, sort_keys=True))
    onnx.save(model, str(out))


def run(cfg: PriorFinetuneConfig, progress: bool = True) -> Path:
    """Fine-tune and return the ONNX path; stopped by Ctrl-C or SIGTERM, it saves what was
    trained and raises :class:`~liwi.training.loop.TrainingStopped`."""
    import torch

    from liwi import weights
    from liwi.model.u2layernet import U2Trunk, load_trunk_weights
    from liwi.training.data import rows_from_table
    from liwi.training.local import plot_history
    from liwi.training.loop import Budget, run_budgeted
    from liwi.training.step import make_optimizer

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    source = weights.resolve(cfg.weight)
    trunk = U2Trunk(cfg.trunk)
    load_trunk_weights(trunk, str(source))

    def rows(split: str) -> list[dict]:
        found = rows_from_table(cfg.tables, split=split, extra_columns=("agent_trace",))
        return [r for r in found if keeps_background(r, cfg.background_photos)]

    train = rows("train")
    if not train:
        raise ValueError(f"no ok train rows with allowed background photos in {cfg.tables}")
    val = (rows("val") or train)[: cfg.val_samples]
    teacher = (
        PhotoTeacher(cfg.teacher or cfg.weight, load_photos(cfg.photos)) if cfg.photos else None
    )
    opt = make_optimizer(trunk, cfg.lr, cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = run_budgeted(
        trunk,
        opt,
        cfg,
        Budget.of(cfg),
        len(train),
        lambda idx: make_batch([train[i] for i in idx], cfg, rng, teacher=teacher),
        lambda: validate(trunk, val, cfg, teacher),
        out.with_suffix(".history.jsonl"),
        rng,
        step_fn=prior_step,
        validate_first=True,  # the pretrained weight's own score, for comparison
        desc="finetune-prior",
        progress=progress,
    )
    tuned = {k: v.detach().cpu().clone() for k, v in trunk.state_dict().items()}
    # what the written graph blends with: the starting weight, or another of the same trunk
    if cfg.blend_with is not None:
        source = weights.resolve(cfg.blend_with)
    load_trunk_weights(trunk.cpu(), str(source))
    pretrained = {k: v.detach().clone() for k, v in trunk.state_dict().items()}
    torch.save(tuned, out.with_suffix(".finetuned.pt"))  # unblended, for other mixes
    meta = {
        "fine_tuned_from": cfg.weight,
        "photos_teacher": teacher.weight if teacher else None,
        "blended_with": cfg.blend_with or cfg.weight,
        "mix": cfg.mix,
        "steps": result.steps,
        "minutes": result.minutes,
        "final_val": result.final_val,
        "stopped_by": result.stopped_by,
        "config": cfg.to_dict(),
    }
    write_blend(trunk.cpu(), pretrained, tuned, cfg.mix, source, out, meta)
    plot_history(result.history, out.with_suffix(".loss.png"))
    result.raise_if_stopped(out)
    return out
