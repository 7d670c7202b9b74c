"""The ``liwi`` command line: one entry point, one light module per subcommand.

Each subcommand lives in ``liwi.commands.<name>`` and exposes ``add_arguments(parser)``
and ``run(args) -> int``. Those modules import nothing heavy at top level, so
``liwi --help`` stays instant; the work is imported inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from liwi import __version__

# (name, module, one-line help). Add a subcommand by adding one line here.
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "liwi.commands.demo", "run the main job on the embedded defaults (sample lake)"),
    ("predict", "liwi.commands.predict", "decompose photos into layer folders (PNG/PSD)"),
    ("train-local", "liwi.commands.train_local", "train the decomposition model in one process"),
    ("finetune", "liwi.commands.finetune", "fine-tune model v2: LiWi heads on the U²-Net trunk"),
    (
        "finetune-prior",
        "liwi.commands.finetune_prior",
        "fine-tune the salient prior on layer tables",
    ),
    ("synth", "liwi.commands.synth", "Generate synthetic layered data (image lake + layer table)."),
    ("train", "liwi.commands.train", "train with Ray Train DDP; track and register with MLflow"),
    ("evaluate", "liwi.commands.evaluate", "score a model and baselines on a layer table (report)"),
    ("ablate", "liwi.commands.ablate", "train and evaluate the objective ablations (Table 1)"),
    ("promote", "liwi.commands.promote", "move a registry alias to a version that passes a gate"),
    ("convert", "liwi.commands.convert", "convert Crello / DIS-5K into layer tables"),
    ("decompose", "liwi.commands.decompose", "ADD job: decompose an image lake into layer tables"),
    ("serve", "liwi.commands.serve", "Run the HTTP API and web viewer (Ray Serve) locally."),
    ("submit", "liwi.commands.submit", "submit a job (decompose/train/evaluate) to a Ray cluster"),
    ("jobs", "liwi.commands.jobs", "list, inspect, follow and stop jobs on a Ray cluster"),
    ("edit", "liwi.commands.edit", "edit a decomposition (move, remove, recolour …), re-compose"),
    ("weights", "liwi.commands.weights", "list, fetch, verify and push pretrained weights"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liwi",
        description="LiWi Platform: photos → editable RGBA layer stacks (background, "
        "objects, shadows).",
    )
    parser.add_argument("--version", action="version", version=f"liwi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    mod = importlib.import_module(args._module)
    try:
        return int(mod.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:  # a ConfigError (a ValueError) from any command: exit 2
        from liwi.config import ConfigError

        if not isinstance(exc, ConfigError):
            raise
        print(f"liwi {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
