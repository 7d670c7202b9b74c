"""Rebuild ``data/backgrounds`` and ``data/sample_lake`` from photos bundled in installed wheels.

scikit-image and scikit-learn ship a few openly licensed colour photographs inside their
wheels (see ``data/README.md`` for sources and licences). This script copies the natural
colour photos as JPEG (quality 90) and cuts the demo lake from them. Run by hand:

    python scripts/build_sample_data.py
"""

from __future__ import annotations

from pathlib import Path

import skimage
import sklearn
from PIL import Image

ROOT = Path(__file__).resolve().parents[1] / "data"
SKIMAGE = Path(skimage.__file__).parent / "data"
SKLEARN = Path(sklearn.__file__).parent / "datasets" / "images"

# Natural colour photographs only (no charts, micrographs, greyscale textures or space).
BACKGROUNDS = {
    "astronaut.jpg": SKIMAGE / "astronaut.png",
    "chelsea.jpg": SKIMAGE / "chelsea.png",
    "coffee.jpg": SKIMAGE / "coffee.png",
    "rocket.jpg": SKIMAGE / "rocket.jpg",
    "china.jpg": SKLEARN / "china.jpg",
    "flower.jpg": SKLEARN / "flower.jpg",
}
JPEG_QUALITY = 90  # visually lossless, keeps data/ small

# Demo lake: (name, source, crop box as fractions x0, y0, x1, y1, output long side).
SAMPLE_LAKE = [
    ("cat.jpg", "chelsea.png", (0.0, 0.0, 1.0, 1.0), 451),
    ("coffee_cup.jpg", "coffee.png", (0.05, 0.0, 0.95, 1.0), 480),
    ("coffee_square.jpg", "coffee.png", (0.15, 0.0, 0.8, 1.0), 320),
    ("rocket_launch.jpg", "rocket.jpg", (0.0, 0.0, 1.0, 1.0), 512),
    ("rocket_tall.jpg", "rocket.jpg", (0.3, 0.0, 0.75, 1.0), 400),
    ("temple.jpg", "china.jpg", (0.0, 0.0, 1.0, 1.0), 512),
    ("flower_wide.jpg", "flower.jpg", (0.0, 0.1, 1.0, 0.75), 560),
    ("astronaut_portrait.jpg", "astronaut.png", (0.1, 0.0, 0.9, 1.0), 384),
]


def _load(src: Path) -> Image.Image:
    return Image.open(src).convert("RGB")


def main() -> None:
    (ROOT / "backgrounds").mkdir(parents=True, exist_ok=True)
    (ROOT / "sample_lake").mkdir(parents=True, exist_ok=True)
    for name, src in BACKGROUNDS.items():
        _load(src).save(ROOT / "backgrounds" / name, quality=JPEG_QUALITY)
    by_name = {p.name: p for p in BACKGROUNDS.values()}
    for name, src_name, (x0, y0, x1, y1), long_side in SAMPLE_LAKE:
        img = _load(by_name[src_name])
        w, h = img.size
        img = img.crop((int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h)))
        scale = long_side / max(img.size)
        size = tuple(int(round(s * scale)) for s in img.size)
        img = img.resize(size, Image.Resampling.LANCZOS)
        img.save(ROOT / "sample_lake" / name, quality=JPEG_QUALITY)
    total = sum(f.stat().st_size for f in ROOT.rglob("*.jpg"))
    print(f"wrote {ROOT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
