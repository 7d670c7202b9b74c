"""``liwi predict IMAGE… --out DIR``: decompose photos into layer folders.

An IMAGE may be a folder: it stands for the images under it (recursively, sorted, by
extension as a lake lists them). One folder per photo, ``DIR/<stem>/``: background.png,
foreground.png, shadow.png, recomposed.png, one ``NN_<name>.png`` per layer, layers.json,
and layers.psd with --psd.
Photos above ``--max-pixels`` are downscaled while decoding (the layers come out at the
reduced size; box/point prompts are given in the original photo's pixels). User errors
(bad ``--model``, ``--device``, ``--out``) are one line on stderr and exit 2. A photo that
cannot be read or decomposed is one line on stderr and the others go on; the last line
on stderr accounts for every input (``inputs N: ok A, error B``) and the exit code is 1
when any failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liwi.imageio import WORK_PIXELS
from liwi.predictor import DEFAULT_MAX_LAYERS
from liwi.weights import DEFAULT_WEIGHT


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
    p.add_argument("images", nargs="+", metavar="IMAGE", help="input photos, or folders of photos")
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
        default=DEFAULT_WEIGHT,
        help="salient prior weight: a name from `liwi weights list`, a lake URI or a file; "
        f"'none' for the network alone (default {DEFAULT_WEIGHT})",
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
    p.add_argument(
        "--second-look",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="method model: run the prior again on the peeled background to find an object "
        "it missed (one more prior pass per photo; off by default since the fine-tuned prior)",
    )
    p.add_argument("--psd", action="store_true", help="also write layers.psd")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=WORK_PIXELS,
        help=f"downscale larger photos to this many pixels while decoding (default {WORK_PIXELS})",
    )


class UsageError(ValueError):
    """A wrong option value: reported as one line, exit 2."""


def check_device(device: str | None) -> None:
    """Fail early, in one line, on a device torch does not know or this machine lacks."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"--device {device!r}: unknown device (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {device}: no CUDA GPU is available on this machine")
        if dev.index is not None and dev.index >= count:
            raise UsageError(f"--device {device}: this machine has {count} CUDA GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device}: MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {device}: unsupported here (use cpu, cuda or cuda:N)")


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (torch and boto add paragraphs)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def safe_stem(path: Path) -> str:
    """A folder name for ``path`` that stays inside ``--out`` (``...jpg`` → ``image``)."""
    stem = "".join(c if c.isprintable() else "_" for c in path.stem).strip(". ")
    return stem or "image"


def output_folder(text: str) -> Path:
    """``--out`` as an existing or new folder, or a UsageError."""
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {text}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--out {text}: cannot create the folder ({exc.strerror or exc})"
        ) from None
    return out


def expand_inputs(items: list[str], out: Path) -> list[Path]:
    """The photos named on the command line; a folder stands for the images under it
    (recursively, sorted), except those under ``out`` (an output folder inside the input
    folder: a second run must not decompose the first one's layers). A photo named twice
    (``photos photos/cat.jpg``) is one input. A folder with no image stays as itself: it
    is reported as an error, not silently dropped."""
    from liwi.lake import IMAGE_EXTENSIONS

    out = out.resolve()
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                f
                for f in path.rglob("*")
                if f.is_file()
                and f.suffix.lower() in IMAGE_EXTENSIONS
                and not f.resolve().is_relative_to(out)
            )
            paths += found or [path]
        else:
            paths.append(path)
    unique: dict[Path, Path] = {}
    for path in paths:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def run(args: argparse.Namespace) -> int:
    from liwi.decomposers import build_decomposer
    from liwi.lake import LakeError
    from liwi.model.checkpoint import CheckpointError
    from liwi.predictor import PredictorError

    prior = None if args.prior.lower() == "none" else args.prior
    try:
        if args.max_pixels < 64:
            raise UsageError(f"--max-pixels {args.max_pixels}: must be at least 64")
        check_device(args.device)
        out = output_folder(args.out)
        predictor = build_decomposer(args.method, args.model, prior=prior, device=args.device)
        if args.second_look is not None and hasattr(predictor, "second_look"):
            predictor.second_look = args.second_look
    except CheckpointError as exc:
        print(f"liwi predict: --model {args.model}: {one_line(exc)}", file=sys.stderr)
        return 2
    except (UsageError, PredictorError, LakeError) as exc:
        print(f"liwi predict: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. a model file that cannot be read
        print(f"liwi predict: cannot load the model: {one_line(exc)}", file=sys.stderr)
        return 2
    from liwi.lake import IMAGE_EXTENSIONS

    inputs = expand_inputs(args.images, out)
    failures = 0
    stems: set[str] = set()
    for src in inputs:
        if src.is_dir():
            print(f"{src}: a folder with no images ({' '.join(IMAGE_EXTENSIONS)})", file=sys.stderr)
            failures += 1
            continue
        stem = safe_stem(src)
        while stem in stems:  # two inputs with one stem (a/x.jpg, b/x.png) stay apart
            stem += "_"
        stems.add(stem)
        if not predict_one(predictor, src, out / stem, args):
            failures += 1
    n = len(inputs)
    print(f"inputs {n}: ok {n - failures}, error {failures}", file=sys.stderr)
    return 1 if failures else 0


def predict_one(predictor, src: Path, folder: Path, args: argparse.Namespace) -> bool:
    """Decode (bounded by ``--max-pixels``), decompose and write one photo; False on error."""
    from liwi.imageio import ImageDecodeError, decode_rgb_scaled
    from liwi.layer_export import write_folder
    from liwi.model.prompts import Prompt, PromptError

    try:
        image, (w, h) = decode_rgb_scaled(src.read_bytes(), work_pixels=args.max_pixels)
        prompt = None
        if args.box or args.point:
            prompt = Prompt(box=args.box, points=list(args.point))
            prompt.validate(h, w)  # in the original photo's pixels
            prompt = prompt.scaled(image.shape[1] / w, image.shape[0] / h)
        if image.shape[:2] != (h, w):
            print(
                f"{src}: {w}×{h} downscaled to {image.shape[1]}×{image.shape[0]} "
                f"(--max-pixels {args.max_pixels})",
                file=sys.stderr,
            )
        stack = predictor.decompose(image, prompt=prompt, max_layers=args.max_layers)
        written = write_folder(stack, folder, psd=args.psd)
    except (OSError, ImageDecodeError, PromptError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        print(f"{src}: {why}", file=sys.stderr)
        return False
    n = stack.n_layers
    print(f"{src} → {written} ({n} layer{'' if n == 1 else 's'})")
    return True
