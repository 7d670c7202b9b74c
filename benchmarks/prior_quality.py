"""Union-alpha soft IoU of salient priors alone, split by split, and blends of a fine-tune.

What the predictor reads from its prior is :meth:`SalientPrior.alpha`; this scores it
against each test row's union of object alphas (shadows excluded), the way
``liwi finetune-prior`` validates, for registered weights, ONNX files and weight-space
blends of a ``liwi finetune-prior`` run's unblended ``*.finetuned.pt``:

    python benchmarks/prior_quality.py --split B=/tmp/cleanbg/l3/table,/tmp/cleanbg/l2/table \\
        --split E=/tmp/rendered/l3/table,/tmp/rendered/l2/table \\
        --prior u2netp --prior runs/prior/u2netp-liwi.onnx \\
        --finetuned runs/prior/u2netp-liwi.finetuned.pt \\
        --mix 0.3,0.4,0.5,1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))


def blended_onnx(base: str, finetuned: str, mix: float, folder: Path) -> str:
    """An ONNX file of ``base`` holding (1 − mix)·base + mix·fine-tuned weights."""
    import torch

    from liwi import weights
    from liwi.model.u2layernet import U2Trunk, load_trunk_weights
    from liwi.training.prior import write_blend

    path = weights.resolve(base)
    trunk = U2Trunk(weights.trunk_of(base))
    load_trunk_weights(trunk, str(path))
    out = folder / f"blend_{mix:g}.onnx"
    tuned = torch.load(finetuned, weights_only=True)
    write_blend(trunk, trunk.state_dict(), tuned, mix, path, out, {"mix": mix})
    return str(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", action="append", required=True, help="NAME=TABLE[,TABLE…]")
    ap.add_argument("--prior", action="append", default=[], help="weight name or ONNX file")
    ap.add_argument("--finetuned", help="a finetune-prior run's *.finetuned.pt")
    ap.add_argument("--base", default="u2netp", help="the weight it was fine-tuned from")
    ap.add_argument("--mix", default="", help="comma-separated blends of --finetuned to score")
    ap.add_argument("--limit", type=int, default=None, help="test rows per split")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from liwi.priors.salient import SalientPrior
    from liwi.training.data import rows_from_table
    from liwi.training.prior import alpha_scores

    splits = {}
    for spec in args.split:
        name, tables = spec.split("=", 1)
        splits[name] = rows_from_table(tables.split(","), split="test", limit=args.limit)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="liwi-prior-") as tmp:
        priors = {p: p for p in args.prior}
        for mix in [float(m) for m in args.mix.split(",") if m]:
            if not args.finetuned:
                ap.error("--mix needs --finetuned")
            priors[f"blend {mix:g}"] = blended_onnx(args.base, args.finetuned, mix, Path(tmp))
        for label, weight in priors.items():
            prior = SalientPrior(weight, threads=args.threads)
            results[label] = {}
            for name, rows in splits.items():
                scores = alpha_scores(prior, rows)
                results[label][name] = {"n": len(scores), "union_soft_iou": float(np.mean(scores))}
            row = "  ".join(f"{n} {r['union_soft_iou']:.4f}" for n, r in results[label].items())
            print(f"{label:>14}: {row}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
