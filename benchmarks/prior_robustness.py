"""Does the default prior keep a photo's object when the photo is cropped? (by hand)

    python benchmarks/prior_robustness.py [--photos DIR ...] --json OUT [--sheet PNG]

The fine-tuned default prior (``u2netp-liwi``) kept only the sample cat's eyes once the
photo was cropped or mirrored; its second opinion (``SalientPrior.maps_with_source``)
asks the base weight when it is unsure. For every photo (default: the bundled
``data/backgrounds`` and ``data/sample_lake``) and each of seven variants — native, 15 %
off the left or right, 13 % off the top or bottom, 10 % off all round, mirrored — this
records the prior's alpha mean alone and with the second opinion, its unsure ratio and
which weight answered; the sheet shows every variant the second opinion changed (photo,
alone, with it). A photo's variants should agree with each other: a variant whose alpha
mean is far below the photo's own is a lost object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

# Longest side the photos are read at: the prior sees 320², this only bounds the resize.
MAX_SIDE = 640
# Share of the side each crop takes off.
SIDE_CROP, TOP_CROP, ALL_ROUND = 0.15, 0.13, 0.10


def variants(image: np.ndarray) -> dict[str, np.ndarray]:
    """The photo and six crops or flips of it (C-contiguous)."""
    h, w = image.shape[:2]
    out = {
        "native": image,
        "left": image[:, int(SIDE_CROP * w) :],
        "right": image[:, : w - int(SIDE_CROP * w)],
        "top": image[int(TOP_CROP * h) :],
        "bottom": image[: h - int(TOP_CROP * h)],
        "all_round": image[
            int(ALL_ROUND * h) : h - int(ALL_ROUND * h), int(ALL_ROUND * w) : w - int(ALL_ROUND * w)
        ],
        "mirrored": image[:, ::-1],
    }
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def read_photo(path: Path) -> np.ndarray:
    from PIL import Image

    im = Image.open(path).convert("RGB")
    im.thumbnail((MAX_SIDE, MAX_SIDE))
    return np.asarray(im, np.float32) / 255.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", nargs="*", type=Path, default=None, help="folders of photos")
    ap.add_argument("--prior", default=None, help="prior weight (default: liwi's default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--sheet", type=Path, default=None)
    args = ap.parse_args()

    from liwi.priors.salient import UNSURE_RATIO, SalientPrior, unsure_ratio

    folders = args.photos or [ROOT / "data" / "backgrounds", ROOT / "data" / "sample_lake"]
    paths = sorted(p for f in folders for p in f.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    prior = SalientPrior(args.prior, threads=args.threads)
    records, tiles = [], []
    for path in paths:
        for name, image in variants(read_photo(path)).items():
            maps, answered = prior.maps_with_source(image)
            own = maps if answered == prior.weight else prior._own_maps(image, 320)
            alone, kept = prior.alpha(image, own), prior.alpha(image, maps)
            records.append(
                {
                    "photo": path.name,
                    "variant": name,
                    "unsure_ratio": round(unsure_ratio(own[0]), 3),
                    "alpha_mean_alone": round(float(alone.mean()), 4),
                    "alpha_mean": round(float(kept.mean()), 4),
                    "answered": answered,
                }
            )
            r = records[-1]
            mark = "" if answered == prior.weight else f"  <- {answered}"
            print(
                f"{path.name:24s} {name:9s} unsure {r['unsure_ratio']:7.2f} "
                f"alpha {r['alpha_mean_alone']:.3f} -> {r['alpha_mean']:.3f}{mark}",
                flush=True,
            )
            if answered != prior.weight:
                tiles.append(_tile(image, alone, kept))
    asked = sum(r["unsure_ratio"] > UNSURE_RATIO for r in records)
    changed = sum(r["answered"] != prior.weight for r in records)
    summary = {"prior": prior.weight, "variants": len(records), "asked": asked, "changed": changed}
    print(json.dumps(summary))
    args.json.write_text(json.dumps({**summary, "records": records}, indent=1))
    if args.sheet and tiles:
        from PIL import Image

        Image.fromarray(np.concatenate(tiles, 0)).save(args.sheet)
    return 0


def _tile(image: np.ndarray, alone: np.ndarray, kept: np.ndarray, side: int = 200) -> np.ndarray:
    """Photo | alpha alone | alpha with the second opinion, each ``side`` px square."""
    import cv2

    def sq(x: np.ndarray) -> np.ndarray:
        return cv2.resize((np.clip(x, 0, 1) * 255).astype(np.uint8), (side, side))

    grey = lambda a: np.repeat(sq(a)[..., None], 3, 2)  # noqa: E731
    return np.concatenate([sq(image), grey(alone), grey(kept)], 1)


if __name__ == "__main__":
    raise SystemExit(main())
