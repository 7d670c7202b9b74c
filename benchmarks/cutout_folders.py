"""Build the two folders of real RGBA cut-outs that ``liwi synth --cutouts`` reads.

* ``--kind stamps``: photographic cut-outs from the Debian package
  ``tuxpaint-stamps-default`` (GPL-2) — animals, fruit, plants, tools, vehicles photographed
  and cut out with real alpha. Used for the held-out split D only (an evaluation set is
  not shipped; no shipped weights are trained on it).
* ``--kind clipart``: clip art from ``openclipart-png`` (CC0) — drawn, but real object
  outlines. Used in training (stage 12): the shadow follows the silhouette.

Both packages come from the Debian archive (``apt-get download NAME`` then
``dpkg-deb -x NAME_*.deb ROOT``); this script selects and copies::

    python benchmarks/cutout_folders.py --kind stamps --root ROOT --out /tmp/stamps/photo
    python benchmarks/cutout_folders.py --kind clipart --root ROOT --out /tmp/clipart/sel
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

# Where each package keeps its images, and which of its folders hold objects.
PACKAGES = {
    "stamps": {
        "folder": "usr/share/tuxpaint/stamps",
        "skip": ("symbols", "cartoon", "roadsigns", "flags", "seasonal", "houses", "space"),
        "only": None,
    },
    "clipart": {
        "folder": "usr/share/openclipart/png",
        "skip": ("icons", "aiga", "roadsigns", "flags", "symbols", "shapes", "special", "cartoon"),
        "only": (
            "animals",
            "food",
            "people",
            "plants",
            "transportation",
            "tools",
            "household",
            "recreation",
            "office",
            "buildings",
            "science",
        ),  # fmt: skip
    },
}
# Thresholds per package (measured on the original image, before any shrinking).
MIN_SIDE = {"stamps": 140, "clipart": 120}  # px: smaller images are icons
MIN_OPAQUE = {"stamps": 2000, "clipart": 3000}  # alpha > 0.5 pixels: fewer is a speck
MAX_PIXELS = 4_000_000  # the clip-art package holds a few 168-MP renders: skipped
MAX_OPAQUE_SHARE = 0.9  # clip art: an image this opaque is a picture, not a cut-out
MAX_BOX_FILL = 0.92  # clip art: opaque share of the bounding box above this: a framed picture
MIN_COLOURS = 400  # stamps: distinct colours (5 bit per channel) that make a photograph
OUT_SIDE = 512  # clip art is shrunk to this long side (loading 1,900 cut-outs stays quick)


def keep(kind: str, image: Image.Image) -> Image.Image | None:
    """The cut-out to copy (clip art shrunk to ``OUT_SIDE``), or None when it is no object."""
    if max(image.size) < MIN_SIDE[kind]:
        return None
    if kind == "stamps" and image.mode not in ("RGBA", "LA", "P"):
        return None  # no alpha channel
    rgba = image.convert("RGBA")
    pixels = np.asarray(rgba)
    opaque = pixels[..., 3] > 128
    if opaque.sum() < MIN_OPAQUE[kind]:
        return None
    if kind == "stamps":
        colours = np.unique(pixels[..., :3][opaque] // 8, axis=0)
        return rgba if len(colours) > MIN_COLOURS else None
    if opaque.mean() > MAX_OPAQUE_SHARE:
        return None
    rgba.thumbnail((OUT_SIDE, OUT_SIDE), Image.LANCZOS)
    opaque = np.asarray(rgba)[..., 3] > 128
    ys, xs = np.nonzero(opaque)
    if len(ys) == 0 or opaque.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1)) > MAX_BOX_FILL:
        return None
    return rgba


def build(kind: str, root: Path, out: Path) -> int:
    """Copy the selected cut-outs of one package under ``out``; returns how many."""
    spec = PACKAGES[kind]
    base = root / spec["folder"]
    n = 0
    for path in sorted(base.rglob("*.png")):
        rel = path.relative_to(base)
        if spec["only"] and not str(rel).startswith(spec["only"]):
            continue
        if any(part in str(rel) for part in spec["skip"]):
            continue
        with Image.open(path) as image:
            if kind == "clipart" and image.size[0] * image.size[1] > MAX_PIXELS:
                continue  # checked before decoding
            picked = keep(kind, image)
        if picked is None:
            continue
        (out / rel.parent).mkdir(parents=True, exist_ok=True)
        picked.save(out / rel)
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=sorted(PACKAGES), required=True)
    ap.add_argument("--root", type=Path, required=True, help="where the .deb was extracted")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    print(f"{build(args.kind, args.root, args.out)} cut-outs in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
