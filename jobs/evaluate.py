"""Cluster entry point of the evaluation job: ``python jobs/evaluate.py --config jobs/configs/evaluate.yaml``.

Thin on purpose: it runs ``liwi evaluate`` (the same code path) with the given arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

from liwi.cli import main

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "evaluate.yaml"

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--config" not in argv:
        argv = ["--config", str(DEFAULT_CONFIG), *argv]
    sys.exit(main(["evaluate", *argv]))
