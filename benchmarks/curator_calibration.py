"""Precision and recall of the Layered Image Curator on labelled synthetic layers (by hand).

    python benchmarks/curator_calibration.py --table /tmp/liwi_data/l3/table /tmp/liwi_data/l2/table \
        [--split test] [--limit N] [--json out.json]

Each held-out sample gives one *good* decomposition and four *bad* ones, all built the
way the ADD agent builds a stack — background = the photo inpainted (classical tool) under
the object's alpha, object colour solved so the layers recompose the photo — so fidelity
(PSNR) says little and the curator's alpha, residue and seam checks must tell them apart:

* good: the ground-truth top object's alpha;
* ``fragmented``: that alpha cut into pieces by stripes (a cat face in pieces);
* ``partial``: only the left half of the object's box kept;
* ``scene``: the complement of the object (the background taken for the object);
* ``left_in_background``: the true alpha, but the background keeps the object (no inpaint).

Reports precision (passed and good / passed) and recall (passed and good / good) of the
curator's pass verdict, and the rejection rate per kind of bad layer.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

# Stripe period and width (fraction of the object's box width) of the fragmented masks.
STRIPE_PERIOD, STRIPE_CUT = 0.25, 0.12
# Objects smaller than this fraction of the image are skipped (no room to corrupt them).
MIN_AREA = 0.01


def corruptions(alpha: np.ndarray) -> dict[str, np.ndarray]:
    """The bad alphas of one good alpha (see the module docstring)."""
    ys, xs = np.nonzero(alpha > 0.5)
    x0, x1 = xs.min(), xs.max() + 1
    width = max(1, x1 - x0)
    col = (np.arange(alpha.shape[1]) - x0) / width
    stripes = ((col % STRIPE_PERIOD) >= STRIPE_CUT).astype(np.float32)[None, :]
    half = (np.arange(alpha.shape[1]) < x0 + width // 2).astype(np.float32)[None, :]
    return {
        "fragmented": alpha * stripes,
        "partial": alpha * half,
        "scene": 1.0 - alpha,
    }


def layered(photo: np.ndarray, alpha: np.ndarray, inpaint: bool = True):
    """A stack as the agent builds it: background inpainted under alpha, colour (and edge
    alpha) solved so the stack recomposes the photo (:func:`consistent_layer`)."""
    from liwi.agents.base import consistent_layer
    from liwi.layers import LayerStack
    from liwi.tools.base import ToolError
    from liwi.tools.inpaint import ClassicalInpainter, InpaintInput

    background = photo
    if inpaint:
        try:
            background = ClassicalInpainter()(InpaintInput(image=photo, mask=alpha)).image
        except ToolError:  # (almost) the whole image: nothing to inpaint from
            background = photo
    color, alpha = consistent_layer(photo, alpha.astype(np.float32), photo, background)
    return LayerStack.from_arrays(background, [color], [alpha])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", nargs="+", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from liwi.add.curator import Curator
    from liwi.training.data import decode_row, rows_from_table

    curator = Curator()
    rows = rows_from_table(args.table, split=args.split, limit=args.limit)
    kinds = ["good", "fragmented", "partial", "scene", "left_in_background"]
    passed = {k: [] for k in kinds}
    codes: dict[str, dict[str, int]] = {k: {} for k in kinds}
    for row in rows:
        gt, photo = decode_row(row)
        photo = photo if photo is not None else gt.composite()
        alpha = gt.objects[-1].alpha
        if alpha.mean() < MIN_AREA:
            continue
        stacks = {"good": layered(photo, alpha)}
        stacks |= {k: layered(photo, a) for k, a in corruptions(alpha).items()}
        stacks["left_in_background"] = layered(photo, alpha, inpaint=False)
        for kind, stack in stacks.items():
            verdict = curator(photo, stack)
            passed[kind].append(verdict.passed)
            for code in verdict.failures:
                codes[kind][code] = codes[kind].get(code, 0) + 1
    good = np.array(passed["good"], bool)
    bad = np.concatenate([np.array(passed[k], bool) for k in kinds[1:]])
    tp, fp = int(good.sum()), int(bad.sum())
    out = {
        "samples": int(good.size),
        "precision": round(tp / max(1, tp + fp), 4),
        "recall": round(tp / max(1, good.size), 4),
        "pass_rate": {k: round(float(np.mean(v)), 4) for k, v in passed.items()},
        "failure_codes": codes,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
