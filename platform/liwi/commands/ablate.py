"""``liwi ablate``: full objective vs shadow-guided off vs degradation-restoration off."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", required=True, help="AblationConfig YAML (jobs/configs/ablation.yaml)"
    )
    p.add_argument("--out", help="override: output folder")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from liwi.evaluation.ablation import AblationConfig
    from liwi.evaluation.ablation import run as ablate

    cfg = AblationConfig.from_yaml(args.config, out=args.out)
    ablate(cfg)
    print((Path(cfg.out) / "ablation.md").read_text())
    return 0
