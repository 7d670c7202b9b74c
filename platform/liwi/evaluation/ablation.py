"""Objective ablations (our counterpart of the paper's Table 1).

``run(AblationConfig)`` trains the same model on the same data with the same budget
(steps, batch, seed) three times — the full objective, shadow-guided learning off, and
degradation-restoration off (:meth:`liwi.losses.LossConfig.ablation`) — evaluates each on
the same held-out split, and writes ``ablation.md`` + ``ablation.json`` (one row per
variant). With degradation-restoration off no degraded samples are drawn either
(``data.degrade_prob`` 0), so all variants see the same number of useful samples. Each
variant is its own Ray Train run (``<name>-<variant>``), so an interrupted ablation
resumes where it stopped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from liwi.config import JobConfig

Variant = Literal["full", "no_shadow_guided", "no_degradation"]
VARIANT_FLAGS: dict[str, dict[str, bool]] = {
    "full": {"shadow_guided": True, "degradation": True},
    "no_shadow_guided": {"shadow_guided": False, "degradation": True},
    "no_degradation": {"shadow_guided": True, "degradation": False},
}
# Columns of the comparison table: (header, where in the evaluation headline, better)
COLUMNS: list[tuple[str, str, str]] = [
    ("RGB L1 (0 merges)", "rgb_l1", "↓"),
    ("soft IoU (0 merges)", "alpha_soft_iou", "↑"),
    ("RGB L1 (5 merges)", "rgb_l1_best_merges", "↓"),
    ("soft IoU (5 merges)", "alpha_soft_iou_best_merges", "↑"),
    ("attenuation L1", "attenuation_l1", "↓"),
    ("shadow IoU", "shadow_iou", "↑"),
    ("bg L1 in shadow", "background_l1_shadow", "↓"),
    ("fg maxFβ", "fg_max_f", "↑"),
    ("fg MAE", "fg_mae", "↓"),
    # validation losses of the terms every variant trains with (comparable across variants)
    ("val alpha L1", "val/alpha_l1", "↓"),
    ("val colour L1", "val/color_l1", "↓"),
    ("val background L1", "val/background_l1", "↓"),
    ("val recomposition", "val/recomposition", "↓"),
]


class AblationConfig(JobConfig):
    """``liwi ablate`` (YAML under ``jobs/configs/``)."""

    train_config: str | None = None  # a TrainConfig YAML the variants start from
    train: dict[str, Any] = Field(default_factory=dict)  # overrides of that config's fields
    eval_tables: list[str] = Field(default_factory=list)  # empty: the training tables
    eval_split: str = "test"  # held-out split every variant is scored on
    eval_limit: int | None = Field(None, ge=1)  # at most this many evaluation rows
    variants: list[Variant] = Field(
        default_factory=lambda: ["full", "no_shadow_guided", "no_degradation"]
    )
    out: str = "runs/ablation"  # comparison table + per-variant reports


def variant_config(cfg: AblationConfig, variant: str):
    """The TrainConfig of one variant: same data and budget, the loss switched."""
    from liwi.losses import LossConfig
    from liwi.training.distributed import TrainConfig

    base: dict[str, Any] = {}
    if cfg.train_config:
        base = TrainConfig.from_yaml(cfg.train_config).to_dict()
    merged = {**base, **cfg.train}
    base_cfg = TrainConfig.from_dict(merged, source="ablation.train")
    loss = base_cfg.loss.model_dump()
    switched = LossConfig.ablation(**VARIANT_FLAGS[variant]).model_dump()
    loss.update({k: v for k, v in switched.items() if v == 0.0})
    data = base_cfg.data.model_dump()
    if not VARIANT_FLAGS[variant]["degradation"]:
        # no degraded samples at all: they would only feed the switched-off term, and the
        # variant would train on fewer samples per step than the others
        data["degrade_prob"] = 0.0
    tracking = base_cfg.tracking.model_dump()
    if tracking.get("registered_model"):
        tracking["registered_model"] = f"{tracking['registered_model']}-{variant}"
    tracking["run_name"] = f"{base_cfg.name}-{variant}"
    return TrainConfig.from_dict(
        {
            **merged,
            "name": f"{base_cfg.name}-{variant}",
            "loss": loss,
            "data": data,
            "tracking": tracking,
        }
    )


def markdown(rows: list[dict[str, Any]], budget: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"

    head = ["variant"] + [f"{h} {b}" for h, _, b in COLUMNS]
    lines = [
        "# Objective ablation",
        "",
        "Same data, model, steps, batch and seed; only the loss differs. Budget: "
        + ", ".join(f"{k}={v}" for k, v in budget.items()),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        lines.append(
            "| "
            + " | ".join([r["variant"]] + [fmt(r["metrics"].get(k)) for _, k, _ in COLUMNS])
            + " |"
        )
    return "\n".join(lines) + "\n"


def run(cfg: AblationConfig, progress: bool = True) -> dict[str, Any]:
    """Train and evaluate every variant; write the comparison; return it."""
    from liwi.evaluation.job import EvaluateConfig
    from liwi.evaluation.job import run as evaluate
    from liwi.training.distributed import run as train

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    budget: dict[str, Any] = {}
    for variant in cfg.variants:
        tcfg = variant_config(cfg, variant)
        budget = {
            "preset": tcfg.preset,
            "steps": tcfg.steps,
            "batch_size": tcfg.batch_size,
            "grad_accum": tcfg.grad_accum,
            "workers": tcfg.scaling.num_workers,
            "seed": tcfg.seed,
        }
        result = train(tcfg, register=False)
        report = evaluate(
            EvaluateConfig(
                model=str(result.model_path),
                tables=cfg.eval_tables or tcfg.tables,
                split=cfg.eval_split,
                out=str(out / variant),
                baselines=[],
                limit=cfg.eval_limit,
                tracking=tcfg.tracking.model_copy(
                    update={"registered_model": None, "run_name": f"eval-{tcfg.name}"}
                ),
            ),
            progress=progress,
        )
        rows.append(
            {
                "variant": variant,
                "loss": tcfg.loss.model_dump(),
                "train_run": tcfg.name,
                "mlflow_run_id": result.mlflow_run_id,
                "val_total": result.metrics.get("val/total"),
                "metrics": {
                    **report["headline"],
                    **{k: v for k, v in result.metrics.items() if k.startswith("val/")},
                },
            }
        )
        _write(out, budget, rows)  # after every variant: a partial table survives a stop
    return _write(out, budget, rows)


def _write(out: Path, budget: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {"budget": budget, "rows": rows}
    (out / "ablation.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "ablation.md").write_text(markdown(rows, budget))
    return summary
