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
    ("synth", "liwi.commands.synth", "Generate synthetic layered data (image lake + layer table)."),
    ("submit", "liwi.commands.submit", "submit a job (decompose/train/evaluate) to a Ray cluster"),
    ("jobs", "liwi.commands.jobs", "list, inspect, follow and stop jobs on a Ray cluster"),
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


if __name__ == "__main__":
    sys.exit(main())
