"""The paper's objective ablation at CPU scale, with the single-process training loop.

    python benchmarks/objective_ablation.py --config jobs/configs/train_local_default.yaml \
        --table T1 T2 … --steps 3000 --out runs/ablation-local \
        [--eval-table T …] [--json benchmarks/results/objective_ablation.json]

Trains the same model on the same data with the same budget and seed three times — the
full objective, shadow-guided learning off, degradation-restoration off — then scores each
with ``benchmarks/model_quality.py``'s metrics on the held-out test split. "Off" for
degradation-restoration also stops drawing degraded samples (``degrade_prob`` 0), so every
variant trains on the same number of samples per step. The evaluation adds the task the
degradation objective is for: the top object prompted with a degraded (eroded, dilated or
blurred) copy of its true mask. ``liwi ablate`` is the same experiment on Ray Train for a
cluster budget.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from liwi.evaluation.ablation import VARIANT_FLAGS as VARIANTS  # the one variant list


def train_variant(base_yaml: str, variant: str, args) -> Path:
    """Train one variant with the local loop; returns its checkpoint (reused if present)."""
    from liwi.losses import LossConfig
    from liwi.training.local import TrainLocalConfig, run

    out = Path(args.out) / f"{variant}.pt"
    if out.is_file():
        print(f"{variant}: reusing {out}", flush=True)
        return out
    base = TrainLocalConfig.from_yaml(base_yaml)
    data = base.data
    if not VARIANTS[variant]["degradation"]:
        data = data.model_copy(update={"degrade_prob": 0.0})
    cfg = base.model_copy(
        update={
            "tables": args.table,
            "out": str(out),
            "steps": args.steps,
            "max_minutes": args.max_minutes,
            "threads": args.threads,
            "loss": LossConfig.ablation(**VARIANTS[variant]),
            "data": data,
        }
    )
    t0 = time.perf_counter()
    run(cfg, progress=not args.quiet)
    print(f"{variant}: trained in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="TrainLocalConfig YAML every variant uses")
    ap.add_argument("--table", nargs="+", required=True, help="training layer tables")
    ap.add_argument("--eval-table", nargs="+", default=None, help="default: --table")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--max-minutes", type=float, default=600.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/ablation-local")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).parent))
    import torch
    from model_quality import evaluate

    from liwi.predictor import Predictor
    from liwi.training.data import rows_from_table

    ckpts = {v: train_variant(args.config, v, args) for v in args.variants}
    torch.set_num_threads(args.threads)
    rows = rows_from_table(args.eval_table or args.table, split="test")
    results = {"budget": {"config": args.config, "steps": args.steps}, "variants": {}}
    for variant, path in ckpts.items():
        res = evaluate(Predictor.from_uri(str(path), device="cpu"), rows)
        results["variants"][variant] = res
        m = res["model"]
        print(
            f"{variant:18s} softIoU0 {m['protocol']['merges_0']['alpha_soft_iou']:.3f} "
            f"top IoU {m['top_object']['alpha_soft_iou']:.3f} "
            f"top L1 {m['top_object']['rgb_l1']:.4f} "
            f"degraded-prompt IoU {m['degraded_prompt']['alpha_soft_iou']:.3f} "
            f"shadow IoU {m['shadow']['shadow_iou']:.3f} "
            f"bg-in-shadow ratio {res['shadow_bg_l1_ratio_vs_identity']:.3f}",
            flush=True,
        )
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
