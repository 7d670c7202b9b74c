"""Could the first look's map tell when the prior's second look is worth its pass? (by hand)

    python benchmarks/second_look_gate.py --table T [T ...] [--limit N] --json OUT

The second look (``predictor.SECOND_LOOK``) runs U²-Netp once more on the peeled
background: about a third of the default call's time at 512². A gate would skip it when
the first look's raw map shows nothing outside the peeled objects. For every test row this
decomposes as ``liwi predict`` does (budget of three layers), reads what the second look
did from the stack's meta, and records the first look's raw probability

- ``outside_peak``: its maximum outside the peeled objects grown by 8 px at 320² (what a
  gate would test), and
- ``found_peak``: its maximum inside the object the second look found (what the gate would
  need to see there),

then reports, per threshold, how many second looks a gate would keep and how many of the
found objects it would keep.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# Dilation (px at the prior's 320²) of the peeled objects before reading the map outside
# them: the prior's soft edge spills a few pixels past the object's hard mask.
GROW_PX = 8
# Gate thresholds on outside_peak to report.
THRESHOLDS = (0.005, 0.01, 0.02, 0.05)


def row_record(predictor, image: np.ndarray) -> dict:
    """One row: what the second look did and the first look's map where it matters."""
    from scipy import ndimage

    from liwi.priors.refine import resize_map

    first = predictor.prior.maps(image)[0]  # the first look's fused map (320², raw)
    stack = predictor.decompose(image, max_layers=3)
    rec = {"second_look": stack.meta["second_look"], "objects": len(stack.objects)}
    if rec["second_look"] == "not run":
        return rec
    # objects are back to front; the second look's object, when found, was peeled last
    found = stack.objects[0] if rec["second_look"] == "found" else None
    first_peeled = stack.objects[1:] if found is not None else stack.objects
    taken = np.logical_or.reduce([o.alpha > 0.5 for o in first_peeled]).astype(np.float32)
    small = resize_map(taken, first.shape) > 0.5
    outside = ~ndimage.binary_dilation(small, iterations=GROW_PX)
    rec["outside_peak"] = float(first[outside].max()) if outside.any() else 0.0
    if found is not None:
        inside = resize_map((found.alpha > 0.5).astype(np.float32), first.shape) > 0.5
        rec["found_peak"] = float(first[inside].max()) if inside.any() else 0.0
    return rec


def summarise(records: list[dict]) -> dict:
    looks = [r for r in records if r["second_look"] != "not run"]
    found = [r for r in looks if r["second_look"] == "found"]
    gates = {
        str(t): {
            "looks_kept": sum(r["outside_peak"] >= t for r in looks),
            "found_kept": sum(r["outside_peak"] >= t for r in found),
        }
        for t in THRESHOLDS
    }
    return {
        "rows": len(records),
        "looks": len(looks),
        "found": len(found),
        "found_peaks_sorted": sorted(round(r["found_peak"], 4) for r in found),
        "gates": gates,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", nargs="+", required=True, help="layer table URI(s)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch

    from liwi.predictor import Predictor
    from liwi.training.data import decode_row, rows_from_table

    torch.set_num_threads(args.threads)
    predictor = Predictor.from_uri(None, device="cpu")
    predictor.second_look = True  # what this script measures (off by default since session 14)
    rows = rows_from_table(args.table, split=args.split, limit=args.limit)
    if not rows:
        print(f"no {args.split} rows in {args.table}", file=sys.stderr)
        return 1
    records = []
    for row in rows:
        _, image = decode_row(row)
        records.append(row_record(predictor, np.asarray(image, np.float32)))
    res = {"tables": args.table, "limit": args.limit, "summary": summarise(records)}
    res["records"] = records
    text = json.dumps(res["summary"], indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
