"""``liwi evaluate``: score a model and the baselines on layer tables; write the report."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="EvaluateConfig YAML (jobs/configs/evaluate.yaml)")
    p.add_argument("--model", help="checkpoint path, lake URI or models:/name@alias")
    p.add_argument("--table", action="append", help="layer table URI (repeatable)")
    p.add_argument("--split", help="split to score (default: test)")
    p.add_argument("--out", help="report folder")
    p.add_argument("--limit", type=int, help="at most this many rows")
    p.add_argument("--baseline", action="append", help="identity | classical | prior (repeatable)")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")


def run(args: argparse.Namespace) -> int:
    import json

    from liwi.evaluation.job import EvaluateConfig
    from liwi.evaluation.job import run as evaluate

    overrides = {
        "model": args.model,
        "tables": args.table,
        "split": args.split,
        "out": args.out,
        "limit": args.limit,
        "baselines": args.baseline,
    }
    cfg = EvaluateConfig.load(args.config, **overrides)
    if args.no_tracking:
        cfg = cfg.model_copy(
            update={"tracking": cfg.tracking.model_copy(update={"enabled": False})}
        )
    report = evaluate(cfg)
    print(json.dumps(report["headline"], indent=2))
    print(f"report: {report['files']['markdown']}")
    return 0
