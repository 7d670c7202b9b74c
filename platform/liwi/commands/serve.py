"""``liwi serve``: run the Ray Serve app (API + web viewer) locally in the foreground."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="model URI: a checkpoint path or models:/name@alias (default: the shipped model)",
    )
    parser.add_argument(
        "--config", default=None, help="Serve config YAML (default: serve/config.yaml)"
    )
    parser.add_argument("--host", default=None, help="bind address (config default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (config default 8000)")
    parser.add_argument(
        "--num-cpus", type=float, default=None, help="CPUs for the local Ray (default: all)"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from liwi.serving.runner import ServeStartError, load_serve_config, run_foreground

    # a ConfigError goes to cli.main (exit 2)
    config = load_serve_config(args.config, model_uri=args.model, host=args.host, port=args.port)
    try:
        return run_foreground(config, num_cpus=args.num_cpus)
    except ServeStartError as exc:
        print(f"liwi serve: {exc}", file=sys.stderr)
        return 2
