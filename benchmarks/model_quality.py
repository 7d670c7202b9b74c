"""Quality of a decomposition model on a held-out layer table (run by hand).

    python benchmarks/model_quality.py --table /tmp/liwi_data/l3/table /tmp/liwi_data/l2/table \
        [--model URI] [--split test] [--json out.json] [--sheet out.png] [--test-sheet t.png] \
        [--sheet-boxes benchmarks/sample_lake_boxes.json --boxed-sheet boxed.png] \
        [--method model|add|prior] [--prior u2netp|u2net|none] [--alpha-source prior|model] \
        [--no-flip-average] [--net-side PX] [--max-layers N] [--second-look]
        [--second-look-side PX]

Reports, for the model and for the identity baseline (background = input, no objects):

* LayerD / Qwen-Image-Layered protocol: RGB L1 and Alpha soft IoU after 0 and 5 merges
  (the model is told the ground-truth layer count via ``max_layers``, or, with
  ``--max-layers N``, every row gets the same budget, as ``liwi predict`` gives);
* the top object (first peel) against the ground-truth top object: soft IoU, RGB L1;
* the top object again, prompted with a degraded (eroded/dilated/blurred) copy of its true
  mask, beside the soft IoU of that degraded mask itself;
* shadows: attenuation L1, shadow-region IoU, background L1 inside the shadow region;
* DIS-style foreground segmentation (pysodmetrics) of the union of object alphas.

``--sheet`` also writes a contact sheet of the model on the real photos of
``data/sample_lake`` (qualitative; those photos have no ground truth); ``--boxed-sheet``
the same photos prompted with the hand-drawn boxes of ``--sheet-boxes`` (drawn in red on the
input); ``--test-sheet`` one of held-out synthetic samples, ground truth beside prediction.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

# Largest erosion/dilation/blur radius (px) of the degraded-mask prompts: the training default.
DEGRADE_MAX_PX = 4


def evaluate(predictor, rows, max_merges: int = 5, max_layers: int | None = None) -> dict:
    """All metrics of ``predictor`` and of the identity baseline over ``rows``.

    ``max_layers`` None tells the model each row's true layer count; a number decomposes
    every row with that budget, as ``liwi predict`` does (its default is 3).

    The protocol, shadow and foreground numbers come from the evaluation job's scorer
    (:func:`liwi.evaluation.job.score_rows`); the top-object and degraded-prompt numbers
    are this benchmark's own, computed on the same predictions.
    """
    from liwi.evaluation.job import ALL, score_rows
    from liwi.evaluation.methods import Method, identity_method
    from liwi.metrics.layers import rgb_l1, soft_iou
    from liwi.model.prompts import Prompt
    from liwi.training.data import degrade_mask

    top = {"alpha_soft_iou": [], "rgb_l1": []}
    # the top object prompted with a degraded copy of its true mask (what the
    # degradation-restoration objective trains for), and the degraded prompt itself
    prompted = {"alpha_soft_iou": [], "rgb_l1": [], "prompt_alpha_soft_iou": []}

    from liwi.decomposers import AddDecomposer

    takes_masks = not isinstance(predictor, AddDecomposer)

    def extras(gt, image, preds) -> None:
        pred = preds["model"]
        gt_top = gt.objects[-1].rgba
        got = pred.objects[-1].rgba if pred.objects else np.zeros_like(gt_top)
        top["alpha_soft_iou"].append(soft_iou(got, gt_top) if pred.objects else 0.0)
        top["rgb_l1"].append(rgb_l1(got, gt_top))
        if not takes_masks:  # the ADD chain picks its own objects: no prompted score
            return
        rng = np.random.default_rng(len(prompted["alpha_soft_iou"]))  # same draws every model
        rough = degrade_mask(gt.objects[-1].alpha, DEGRADE_MAX_PX, rng)
        fixed = predictor.decompose(image, prompt=Prompt(mask=rough), max_layers=2)
        got = fixed.objects[-1].rgba if fixed.objects else np.zeros_like(gt_top)
        prompted["alpha_soft_iou"].append(soft_iou(got, gt_top))
        prompted["rgb_l1"].append(rgb_l1(got, gt_top))
        prompted["prompt_alpha_soft_iou"].append(
            soft_iou(np.dstack([gt_top[..., :3], rough]), gt_top)
        )

    model = Method(
        "model", lambda im, n: predictor.decompose(im, max_layers=max_layers or n), "LiWi model"
    )
    t0 = time.perf_counter()
    scored = score_rows(
        rows, [model, identity_method()], max_merges, progress=True, on_sample=extras
    )
    seconds = time.perf_counter() - t0

    def mean(vals):
        vals = [v for v in vals if not math.isnan(v)]
        return float(np.mean(vals)) if vals else float("nan")

    out = {"n": len(rows), "seconds": round(seconds, 1)}
    for name, r in scored["results"].items():
        out[name] = {
            "protocol": {
                f"merges_{a['merges']}": {k: a[k] for k in ("rgb_l1", "alpha_soft_iou")}
                for a in r["layers"][ALL]
            },
            "shadow": r["shadow"][ALL],
        }
    out["model"]["top_object"] = {k: mean(v) for k, v in top.items()}
    out["model"]["degraded_prompt"] = {k: mean(v) for k, v in prompted.items()}
    out["model"]["fg_segmentation"] = scored["results"]["model"]["foreground"]
    m, i = out["model"]["shadow"], out["identity"]["shadow"]
    out["shadow_bg_l1_ratio_vs_identity"] = m["background_l1_shadow"] / i["background_l1_shadow"]
    return out


def _draw_row(axes, views: list[np.ndarray], titles: list[str] | None) -> None:
    """One row of a sheet: images (grey maps in grey), no ticks, titles on the first row."""
    for c, v in enumerate(views):
        axes[c].imshow(v, cmap="gray" if v.ndim == 2 else None, vmin=0, vmax=1)
        axes[c].set_xticks([])
        axes[c].set_yticks([])
        if titles:
            axes[c].set_title(titles[c], fontsize=8)


def load_boxes(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """``{photo stem: [x0, y0, x1, y1]}`` from a JSON file (pixels of the original photo)."""
    raw = json.loads(path.read_text())
    boxes = {}
    for stem, box in raw.items():
        if stem.startswith("_"):  # "_comment" keys
            continue
        if not (isinstance(box, list) and len(box) == 4):
            raise ValueError(f"{path}: box of {stem!r} must be [x0, y0, x1, y1], got {box!r}")
        boxes[stem] = tuple(float(v) for v in box)
    return boxes


def contact_sheet(
    predictor,
    folder: Path,
    path: Path,
    boxes: dict[str, tuple[float, float, float, float]] | None = None,
) -> None:
    """Input, background, foreground, shadow and recomposition for each sample photo.

    With ``boxes``, only the photos that have a box are shown, each prompted with it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from liwi.imageio import decode_rgb
    from liwi.model.prompts import Prompt
    from liwi.predictor import DEFAULT_MAX_LAYERS

    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if boxes is not None:
        missing = sorted(set(boxes) - {p.stem for p in photos})
        if missing:
            raise ValueError(f"boxes for photos not in {folder}: {missing}")
        photos = [p for p in photos if p.stem in boxes]
    cols = ["input", "background", "foreground", "shadow (S)", "recomposed"]
    fig, axes = plt.subplots(len(photos), len(cols), figsize=(2.2 * len(cols), 2.2 * len(photos)))
    checker = None
    for r, p in enumerate(photos):
        img = decode_rgb(p.read_bytes())
        box = boxes.get(p.stem) if boxes is not None else None
        st = predictor.decompose(
            img, Prompt(box=box) if box else None, max_layers=DEFAULT_MAX_LAYERS
        )
        fg = st.foreground()
        h, w = st.size
        yy, xx = np.mgrid[0:h, 0:w]
        checker = (((yy // 12 + xx // 12) % 2) * 0.3 + 0.6)[..., None]
        fg_view = fg[..., :3] * fg[..., 3:] + checker * (1 - fg[..., 3:])
        views = [img, st.background, fg_view, st.total_attenuation().mean(axis=2), st.composite()]
        _draw_row(axes[r], views, cols if r == 0 else None)
        axes[r, 0].set_ylabel(f"{p.stem}\n{len(st.objects)} obj", fontsize=8)
        if box is not None:
            x0, y0, x1, y1 = box
            axes[r, 0].add_patch(
                plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="red", lw=1.2)
            )
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def test_sheet(predictor, rows, path: Path, n: int = 8) -> None:
    """Ground truth beside prediction for ``n`` evenly spaced held-out synthetic samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from liwi.metrics.layers import soft_iou
    from liwi.training.data import decode_row

    picked = rows[:: max(1, len(rows) // n)][:n]
    cols = ["input", "true objects", "predicted objects", "true background"]
    cols += ["predicted background", "true shadow S", "predicted shadow S"]
    fig, axes = plt.subplots(len(picked), len(cols), figsize=(1.9 * len(cols), 1.9 * len(picked)))
    for r, row in enumerate(picked):
        gt, image = decode_row(row)
        image = image if image is not None else gt.composite()
        pred = predictor.decompose(image, max_layers=gt.n_layers)
        views = [
            image,
            gt.foreground()[..., 3],
            pred.foreground()[..., 3],
            gt.background,
            pred.background,
            gt.total_attenuation().mean(axis=2),
            pred.total_attenuation().mean(axis=2),
        ]
        _draw_row(axes[r], views, cols if r == 0 else None)
        top = soft_iou(pred.objects[-1].rgba, gt.objects[-1].rgba) if pred.objects else 0.0
        axes[r, 0].set_ylabel(f"{gt.n_layers} layers\ntop IoU {top:.2f}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", nargs="+", required=True, help="layer table URI(s)")
    ap.add_argument("--model", default=None, help="model URI (default: the shipped model)")
    ap.add_argument("--method", default="model", choices=("model", "add", "prior"))
    ap.add_argument(
        "--prior", default=None, help="prior weight (default: liwi's default), or 'none'"
    )
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--sheet", type=Path, default=None, help="contact sheet of data/sample_lake")
    ap.add_argument("--sheet-boxes", type=Path, default=None, help="JSON {photo stem: box}")
    ap.add_argument("--boxed-sheet", type=Path, default=None, help="box-prompted contact sheet")
    ap.add_argument("--test-sheet", type=Path, default=None, help="sheet of test samples")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--alpha-source",
        default="prior",
        choices=("prior", "model"),
        help="alpha of prior-planned layers: the prior instance's or the network's (model v2)",
    )
    ap.add_argument(
        "--net-side",
        type=int,
        default=None,
        help="long side (px) the network sees (default: predictor.NET_SIDE_SCALE × its resolution)",
    )
    ap.add_argument(
        "--max-layers",
        type=int,
        default=None,
        help="decompose every row with this layer budget, as `liwi predict` does (default: "
        "each row's true layer count)",
    )
    ap.add_argument(
        "--second-look",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the prior looks again at the peeled background (default predictor.SECOND_LOOK)",
    )
    ap.add_argument(
        "--second-look-side",
        type=int,
        default=None,
        help="input side (px) of the prior's second look (default predictor.SECOND_LOOK_SIDE)",
    )
    ap.add_argument(
        "--no-flip-average",
        action="store_true",
        help="run the network on the photo only, not also on its mirror (predictor.FLIP_AVERAGE)",
    )
    args = ap.parse_args(argv)

    if args.boxed_sheet and not args.sheet_boxes:
        ap.error("--boxed-sheet needs --sheet-boxes")
    boxes = load_boxes(args.sheet_boxes) if args.sheet_boxes else None

    import torch

    from liwi.decomposers import build_decomposer
    from liwi.training.data import rows_from_table

    torch.set_num_threads(args.threads)
    from liwi.weights import DEFAULT_WEIGHT

    prior = None if (args.prior or "").lower() == "none" else (args.prior or DEFAULT_WEIGHT)
    predictor = build_decomposer(args.method, args.model, prior=prior, device="cpu")
    if args.method == "model":
        predictor.alpha_source = args.alpha_source
        predictor.flip_average = not args.no_flip_average
        if args.second_look is not None:
            predictor.second_look = args.second_look
        predictor.second_look_side = args.second_look_side or predictor.second_look_side
        predictor.net_side = args.net_side or predictor.net_side
    rows = rows_from_table(args.table, split=args.split, limit=args.limit)
    if not rows:
        print(f"no {args.split} rows in {args.table}", file=sys.stderr)
        return 1
    res = evaluate(predictor, rows, max_layers=args.max_layers)
    res["model_uri"] = args.model or "default"
    res["method"], res["prior"] = args.method, prior
    res["alpha_source"] = args.alpha_source if args.method == "model" else None
    res["split"] = args.split
    res["flip_average"] = getattr(predictor, "flip_average", None)
    res["net_side"] = getattr(predictor, "net_side", None)
    res["second_look"] = getattr(predictor, "second_look", None)
    res["second_look_side"] = getattr(predictor, "second_look_side", None)
    res["max_layers"] = args.max_layers or "true count"
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    if args.test_sheet:
        args.test_sheet.parent.mkdir(parents=True, exist_ok=True)
        test_sheet(predictor, rows, args.test_sheet)
    if args.sheet:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(predictor, Path("data/sample_lake"), args.sheet)
    if args.boxed_sheet:
        args.boxed_sheet.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(predictor, Path("data/sample_lake"), args.boxed_sheet, boxes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
