"""``liwi synth``: synthetic layered samples (real-photo backgrounds, objects, shadows)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output lake: /path or s3://bucket/prefix")
    parser.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument(
        "--layers", type=int, choices=(2, 3), default=2, help="layers per sample (default 2)"
    )
    parser.add_argument("--size", type=int, default=256, help="image side in px (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument(
        "--kind",
        choices=("paste", "render"),
        default=None,
        help="paste: flat objects and 2-D shadows over a photo (default); render: ray-traced"
        " solids with exact soft shadows on a photo-textured floor",
    )
    parser.add_argument("--backgrounds", default=None, help="folder of background photos")
    parser.add_argument(
        "--cutouts", default=None, help="folder of real RGBA cut-outs (*.png) used as objects"
    )
    parser.add_argument(
        "--cutout-share", type=float, default=None, help="share of objects that are cut-outs"
    )
    parser.add_argument("--config", default=None, help="YAML SynthConfig; flags override it")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys

    from liwi.synth.job import SynthConfig
    from liwi.synth.job import run as run_job

    overrides = {
        "out": args.out,
        "kind": args.kind,
        "n": args.n,
        "layers": args.layers,
        "size": args.size,
        "seed": args.seed,
        "backgrounds": args.backgrounds,
        "cutouts": args.cutouts,
        "cutout_share": args.cutout_share,
        "progress": not args.quiet,
    }
    config = SynthConfig.load(args.config, **overrides)  # ConfigError: cli.main, exit 2
    try:
        summary = run_job(config)
    except (OSError, ValueError) as exc:  # LakeError is an OSError
        print(f"liwi synth: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {k: summary[k] for k in ("images", "table", "contact_sheet", "splits", "seconds")},
            indent=2,
        )
    )
    return 0
