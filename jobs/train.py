"""Cluster entry point of the training job: ``python jobs/train.py --config jobs/configs/train.yaml``.

Thin on purpose: submit it with the Ray Jobs API (``ray job submit -- python jobs/train.py``)
or a KubeRay RayJob; it connects to the cluster (RAY_ADDRESS) and runs the same
``liwi.training.distributed.run`` that ``liwi train`` runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from liwi.cli import main

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "train.yaml"

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--config" not in argv:
        argv = ["--config", str(DEFAULT_CONFIG), *argv]
    sys.exit(main(["train", *argv]))
