"""Cluster entry point of the objective ablation: ``python jobs/ablate.py --config jobs/configs/ablation.yaml``."""

from __future__ import annotations

import sys
from pathlib import Path

from liwi.cli import main

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "ablation.yaml"

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--config" not in argv:
        argv = ["--config", str(DEFAULT_CONFIG), *argv]
    sys.exit(main(["ablate", *argv]))
