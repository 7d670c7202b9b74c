"""``liwi decompose``: run the ADD job (image lake → layer tables) locally or on a cluster."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="image lake: folder, file:// or s3:// URI")
    parser.add_argument("--output", required=True, help="output URI for layers/rejects/errors")
    parser.add_argument("--config", help="YAML config (default: built-in defaults)")
    parser.add_argument("--runner", choices=["ray", "loop"], help="override config.runner")
    parser.add_argument("--limit", type=int, help="process at most N inputs")
    parser.add_argument("--ray-address", help="join this Ray cluster instead of starting one")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import json

    from liwi.add.driver import DecomposeConfig, JobInterrupted, format_summary
    from liwi.add.driver import run as run_job

    overrides = {
        "input": args.input,
        "output": args.output,
        "runner": args.runner,
        "limit": args.limit,
    }
    if args.no_progress:
        overrides["progress"] = False
    config = DecomposeConfig.load(args.config, **overrides)  # ConfigError: cli.main, exit 2
    if args.ray_address:
        ray = config.ray.model_copy(update={"address": args.ray_address})
        config = config.model_copy(update={"ray": ray})
    try:
        summary = run_job(config)
    except JobInterrupted as exc:  # Ctrl-C or SIGTERM: what was written, then 130 / 143
        print(format_summary(exc.summary))
        print(f"liwi decompose: {exc}", file=sys.stderr)
        return 128 + exc.signum
    print(format_summary(summary))
    print(json.dumps({k: summary[k] for k in ("inputs", "counts", "images_per_second")}))
    return 0 if summary["unaccounted"] == 0 and not summary["ids_written_twice"] else 1
