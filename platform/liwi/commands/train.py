"""``liwi train``: the Ray Train DDP training job (local Ray or a cluster via RAY_ADDRESS)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="TrainConfig YAML (jobs/configs/train.yaml)")
    p.add_argument(
        "--table", action="extend", nargs="+", help="override: layer table URI(s) (repeatable)"
    )
    p.add_argument("--name", help="override: run name (the same name + storage resumes)")
    p.add_argument("--storage-path", help="override: checkpoint storage (folder or s3://…)")
    p.add_argument("--steps", type=int, help="override: optimizer updates")
    p.add_argument("--no-register", action="store_true", help="do not register the model")


def run(args: argparse.Namespace) -> int:
    from liwi.training.distributed import TrainConfig, summary
    from liwi.training.distributed import run as train

    cfg = TrainConfig.from_yaml(
        args.config,
        tables=args.table,
        name=args.name,
        storage_path=args.storage_path,
        steps=args.steps,
    )
    result = train(cfg, register=not args.no_register)
    print(summary(result))
    return 0
