"""``liwi finetune-prior``: fine-tune the salient-object prior (objects without shadows)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="PriorFinetuneConfig YAML (jobs/configs/…)")
    p.add_argument(
        "--table", action="extend", nargs="+", help="override: layer table URI(s) (repeatable)"
    )
    p.add_argument("--out", help="override: the fine-tuned ONNX path")
    p.add_argument("--steps", type=int, help="override: max optimisation steps")
    p.add_argument("--max-minutes", type=float, help="override: wall-clock budget")


def run(args: argparse.Namespace) -> int:
    from liwi.training.loop import checkpoint_exit_code
    from liwi.training.prior import PriorFinetuneConfig
    from liwi.training.prior import run as finetune_prior

    cfg = PriorFinetuneConfig.from_yaml(
        args.config,
        tables=args.table,
        out=args.out,
        steps=args.steps,
        max_minutes=args.max_minutes,
    )
    return checkpoint_exit_code(lambda: finetune_prior(cfg))
