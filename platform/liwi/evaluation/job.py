"""The evaluation job: a model and its baselines on held-out layer tables.

For every ``ok`` row of the split, each method decomposes the flat image into at most as
many layers as the ground truth has, and is scored with :mod:`liwi.metrics`:

* layers — RGB L1 and Alpha soft IoU with the LayerD / Qwen-Image-Layered protocol after
  0–``max_merges`` allowed merges, per number of layers (2 / 3) and overall;
* shadow — attenuation L1, shadow-region IoU, background L1 inside the shadow region;
* foreground segmentation — the union of the predicted object alphas against the
  ground-truth foreground (soft IoU, maxFβ, weighted Fβ, MAE, S-measure, E-measure, HCE).

Rows whose ``scores`` hold ``mask_only`` (e.g. DIS-5K, where only a mask is known) count
for foreground segmentation only. The report (Markdown + JSON + PNG charts) goes to
``out``; the same numbers go to an MLflow run, and — for a registered model — onto the
model version as ``eval.*`` tags that ``liwi promote`` checks against its gate.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from itertools import zip_longest
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from liwi.config import JobConfig
from liwi.metrics.shadow import SHADOW_KEYS
from liwi.tracking import TrackingConfig
from liwi.weights import DEFAULT_WEIGHT

MASK_ONLY = "mask_only"  # row score flag: only the foreground mask is ground truth
ALL = "all"  # the pooled group of every layer count


class EvaluateConfig(JobConfig):
    """``liwi evaluate`` / ``jobs/evaluate.py`` (YAML under ``jobs/configs/``)."""

    model: str | None = None  # checkpoint / lake / models:/ URI; None = the shipped model
    # the model's salient prior (and the `prior` baseline's): a weight name, a lake URI
    # (cluster workers read the lake) or None for the network alone
    prior: str | None = DEFAULT_WEIGHT
    tables: list[str] = Field(min_length=1)  # layer tables (folders or s3://…)
    split: str | None = "test"  # rows of this split (None = every ok row)
    out: str = "runs/eval"  # report folder
    baselines: list[Literal["identity", "classical", "prior"]] = Field(
        default_factory=lambda: ["identity", "classical"]
    )  # compared side by side with the model
    max_merges: int = Field(5, ge=0, le=5)  # allowed merges of the LayerD protocol
    limit: int | None = Field(None, ge=1)  # at most this many rows (smoke runs)
    device: str | None = None  # predictor device (None = auto)
    hce: bool = True  # compute HCE (human correction effort; slower)
    tracking: TrackingConfig = Field(
        default_factory=lambda: TrackingConfig(registered_model=None, system_metrics=False)
    )
    record_on_model: bool = True  # write eval.* tags on the registered model version


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def load_rows(cfg: EvaluateConfig) -> list[dict[str, Any]]:
    """The rows to score (``ok``, of the split), across tables, up to ``limit``."""
    from liwi.table import read_table

    per_table = [
        [
            row
            for row in read_table(uri).to_pylist()
            if row["status"] == "ok" and (cfg.split is None or row["split"] == cfg.split)
        ]
        for uri in cfg.tables
    ]
    # interleave the tables, so a limit keeps every table (e.g. 2- and 3-layer) represented
    rows = [r for group in zip_longest(*per_table) for r in group if r is not None]
    if not rows:
        raise ValueError(f"no ok rows of split {cfg.split!r} in {cfg.tables}")
    return rows[: cfg.limit] if cfg.limit else rows


def score_sample(pred, gt, image_has_layers: bool, max_merges: int) -> dict[str, Any]:
    """All metrics of one prediction against one ground-truth stack."""
    from liwi.metrics import evaluate_layers, shadow_metrics, stack_eval_layers

    out: dict[str, Any] = {
        "fg_pred": pred.foreground()[..., 3],
        "fg_gt": gt.foreground()[..., 3],
    }
    if image_has_layers:
        out["layers"] = evaluate_layers(
            stack_eval_layers(pred), stack_eval_layers(gt), max_merges=max_merges
        )
        out["shadow"] = shadow_metrics(
            pred.total_attenuation(), gt.total_attenuation(), pred.background, gt.background
        )
    return out


def aggregate(per_sample: list[dict[str, Any]], groups: list[str], hce: bool) -> dict[str, Any]:
    """Means per layer-count group (and ``all``) of one method's per-sample scores."""
    from liwi.metrics import decomposition_scores
    from liwi.metrics.segmentation import fg_segmentation_metrics

    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s, g in zip(per_sample, groups, strict=True):
        if "layers" in s:
            by_group[g].append(s)
            by_group[ALL].append(s)
    layers = {
        g: [
            {
                "merges": r["merges"],
                "rgb_l1": r["rgb_l1"],
                "alpha_soft_iou": r["alpha_soft_iou"],
                "count": r["count"],
            }
            for r in decomposition_scores([s["layers"] for s in items])
        ]
        for g, items in sorted(by_group.items())
    }
    shadow = {
        g: {k: _nanmean([s["shadow"][k] for s in items]) for k in SHADOW_KEYS}
        for g, items in sorted(by_group.items())
    }
    fg = fg_segmentation_metrics(
        [s["fg_pred"] for s in per_sample], [s["fg_gt"] for s in per_sample], hce=hce
    )
    return {"layers": layers, "shadow": shadow, "foreground": fg}


def headline(results: dict[str, Any], method: str = "model") -> dict[str, float]:
    """Flat key numbers of one method (the ones a promotion gate checks)."""
    r = results[method]
    out: dict[str, float] = {}
    layers = r["layers"].get(ALL)
    if layers:
        out["alpha_soft_iou"] = layers[0]["alpha_soft_iou"]
        out["rgb_l1"] = layers[0]["rgb_l1"]
        out["alpha_soft_iou_best_merges"] = layers[-1]["alpha_soft_iou"]
        out["rgb_l1_best_merges"] = layers[-1]["rgb_l1"]
        out.update({k: v for k, v in r["shadow"][ALL].items()})
    out.update({f"fg_{k}": v for k, v in r["foreground"].items() if k != "count"})
    ident = results.get("identity")
    if ident and ident["layers"].get(ALL) and "background_l1_shadow" in out:
        base = ident["shadow"][ALL]["background_l1_shadow"]
        if base and not math.isnan(base):
            out["background_l1_shadow_vs_identity"] = out["background_l1_shadow"] / base
    return {k: float(v) for k, v in out.items() if v is not None and not math.isnan(float(v))}


def flat_metrics(results: dict[str, Any]) -> dict[str, float]:
    """Every number as ``method/group/merges_m/metric`` (for MLflow)."""
    out: dict[str, float] = {}
    for method, r in results.items():
        for g, rows in r["layers"].items():
            for row in rows:
                for k in ("rgb_l1", "alpha_soft_iou"):
                    out[f"{method}/L{g}/m{row['merges']}/{k}"] = row[k]
        for g, vals in r["shadow"].items():
            for k, v in vals.items():
                out[f"{method}/L{g}/shadow/{k}"] = v
        for k, v in r["foreground"].items():
            out[f"{method}/fg/{k}"] = v
    return {k: float(v) for k, v in out.items() if not math.isnan(float(v))}


OnSample = Callable[[Any, np.ndarray, dict[str, Any]], None]  # (gt, image, {method: pred})


def score_rows(
    rows: list[dict[str, Any]],
    methods: list[Any],
    max_merges: int = 5,
    hce: bool = True,
    progress: bool = False,
    on_sample: OnSample | None = None,
) -> dict[str, Any]:
    """Decompose every row with every method and score it; the one evaluator.

    Each method (:class:`liwi.evaluation.methods.Method`) gets at most as many layers as
    the ground truth has. Returns ``results`` (per method: :func:`aggregate`), ``seconds``
    (per method, decomposition time) and ``groups`` (the layer count of every row).
    ``on_sample`` sees every row's ground truth, image and predictions (extra metrics).
    """
    from tqdm import tqdm

    from liwi.schema import image_of, row_to_stack

    per_method: dict[str, list[dict[str, Any]]] = {m.name: [] for m in methods}
    seconds: dict[str, float] = {m.name: 0.0 for m in methods}
    groups: list[str] = []
    for row in tqdm(rows, desc="evaluate", disable=not progress):
        gt = row_to_stack(row)
        image = image_of(row)
        mask_only = bool(dict(row.get("scores") or []).get(MASK_ONLY))
        groups.append(str(gt.n_layers))
        max_layers = max(2, gt.n_layers)
        preds = {}
        for m in methods:
            t = time.perf_counter()
            preds[m.name] = pred = m.decompose(image, max_layers)
            seconds[m.name] += time.perf_counter() - t
            per_method[m.name].append(score_sample(pred, gt, not mask_only, max_merges))
        if on_sample is not None:
            on_sample(gt, image, preds)
    results = {name: aggregate(samples, groups, hce) for name, samples in per_method.items()}
    return {"results": results, "seconds": seconds, "groups": groups}


def run(cfg: EvaluateConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate; write the report; log to MLflow; returns the report dict."""
    from liwi import tracking
    from liwi.evaluation.methods import build_methods
    from liwi.evaluation.report import write_report

    t0 = time.monotonic()
    rows = load_rows(cfg)
    methods = build_methods(cfg.model, cfg.baselines, device=cfg.device, prior=cfg.prior)
    scored = score_rows(rows, methods, cfg.max_merges, cfg.hce, progress)
    results, seconds, groups = scored["results"], scored["seconds"], scored["groups"]
    report: dict[str, Any] = {
        "model": cfg.model or "default",
        "tables": cfg.tables,
        "split": cfg.split,
        "samples": len(rows),
        "samples_per_layers": {g: groups.count(g) for g in sorted(set(groups))},
        "methods": {m.name: m.description for m in methods},
        "seconds_per_image": {k: v / len(rows) for k, v in seconds.items()},
        "headline": headline(results),
        "results": results,
        "config": cfg.to_dict(),
    }
    out = Path(cfg.out)
    files = write_report(report, out)
    report["files"] = {k: str(v) for k, v in files.items()}
    if cfg.tracking.enabled:
        tracked = tracking.start_run(
            cfg.tracking, params=cfg.to_dict(), tags={"liwi.job": "evaluate"}
        )
        tracked.log_metrics({f"eval/{k}": v for k, v in report["headline"].items()})
        tracked.log_metrics(flat_metrics(results))
        tracked.log_artifact(out, "report")
        tracked.end()
        report["mlflow_run_id"] = tracked.run_id
        if cfg.record_on_model and cfg.model and tracking.is_mlflow_uri(cfg.model):
            tracking.record_evaluation(
                cfg.model, report["headline"], tracked.run_id, cfg.tracking.tracking_uri
            )
    report["minutes"] = round((time.monotonic() - t0) / 60, 3)
    return report
