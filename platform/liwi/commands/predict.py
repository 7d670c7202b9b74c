"""``liwi predict IMAGE… --out DIR``: decompose photos into layer folders.

One folder per input, ``DIR/<stem>/``: background.png, foreground.png, shadow.png,
recomposed.png, one ``NN_<name>.png`` per layer, layers.json, and layers.psd with --psd.
"""

from __future__ import annotations

import argparse
import sys

from liwi.predictor import DEFAULT_MAX_LAYERS


def _box(text: str) -> tuple[float, float, float, float]:
    """``--box``: :func:`liwi.model.prompts.parse_box`, its error shown by argparse."""
    from liwi.model.prompts import PromptError, parse_box

    try:
        return parse_box(text)
    except PromptError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _pair(text: str) -> tuple[float, float]:
    """``--point``: :func:`liwi.model.prompts.parse_point`, its error shown by argparse."""
    from liwi.model.prompts import PromptError, parse_point

    try:
        return parse_point(text)
    except PromptError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="input photos")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per image)")
    p.add_argument(
        "--method",
        choices=("model", "add", "prior"),
        default="model",
        help="model: the LiWi network guided by the prior (default); add: the ADD tool chain; "
        "prior: the pretrained salient prior alone, no shadow",
    )
    p.add_argument("--model", default=None, help="checkpoint path, lake URI or models:/name@alias")
    p.add_argument(
        "--prior",
        default="u2netp",
        help="salient prior weight: a name from `liwi weights list`, a lake URI or a file; "
        "'none' for the network alone (default u2netp)",
    )
    p.add_argument("--box", type=_box, help="prompt box x0,y0,x1,y1 in pixels")
    p.add_argument(
        "--point", type=_pair, action="append", default=[], help="prompt point x,y (repeatable)"
    )
    p.add_argument(
        "--max-layers",
        type=int,
        default=DEFAULT_MAX_LAYERS,
        help=f"most layers: background + objects (default {DEFAULT_MAX_LAYERS})",
    )
    p.add_argument("--psd", action="store_true", help="also write layers.psd")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from liwi.decomposers import build_decomposer
    from liwi.imageio import ImageDecodeError, decode_rgb
    from liwi.layer_export import write_folder
    from liwi.model.prompts import Prompt, PromptError
    from liwi.predictor import PredictorError

    prior = None if args.prior.lower() == "none" else args.prior
    try:
        predictor = build_decomposer(args.method, args.model, prior=prior, device=args.device)
    except PredictorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    failures = 0
    stems: set[str] = set()
    for src in args.images:
        path = Path(src)
        stem = path.stem
        while stem in stems:  # two inputs with one stem (a/x.jpg, b/x.png) stay apart
            stem += "_"
        stems.add(stem)
        try:
            image = decode_rgb(path.read_bytes())
            prompt = None
            if args.box or args.point:
                prompt = Prompt(box=args.box, points=list(args.point))
            stack = predictor.decompose(image, prompt=prompt, max_layers=args.max_layers)
        except (OSError, ImageDecodeError, PromptError, ValueError) as exc:
            print(f"{src}: {exc}", file=sys.stderr)
            failures += 1
            continue
        folder = write_folder(stack, out / stem, psd=args.psd)
        print(f"{src} → {folder} ({stack.n_layers} layers)")
    return 1 if failures else 0
