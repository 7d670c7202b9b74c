"""Cluster entry point of the synth job: ``python jobs/synth.py --config jobs/configs/synth.yaml``.

Thin on purpose: it loads the typed config and calls ``liwi.synth.job.run``, the same
function ``liwi synth`` uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from liwi.synth.job import SynthConfig, run

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "synth.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="SynthConfig YAML")
    parser.add_argument("--out", default=None, help="override the output lake URI")
    args = parser.parse_args(argv)
    summary = run(SynthConfig.from_yaml(args.config, out=args.out))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
