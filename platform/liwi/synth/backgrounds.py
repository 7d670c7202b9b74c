"""Backgrounds from real photographs: random crop, flip and colour jitter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liwi.imageio import decode_rgb
from liwi.paths import BACKGROUNDS_DIR

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png")


def default_background_dir() -> Path:
    """``data/backgrounds`` of the source checkout."""
    return BACKGROUNDS_DIR


@dataclass(frozen=True)
class Photo:
    """A decoded photograph and the name it is recorded under in generator traces."""

    name: str
    pixels: np.ndarray  # H×W×3 float32


def load_photos(folder: str | Path | None = None) -> list[Photo]:
    """Decode every photo in ``folder`` (sorted by name, so indices are stable)."""
    folder = Path(folder) if folder else default_background_dir()
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"no background photos (*.jpg, *.png) in {folder}")
    return [Photo(p.name, decode_rgb(p.read_bytes())) for p in files]


def random_crop(
    rng: np.random.Generator, photo: np.ndarray, size: int, min_frac: float = 0.6
) -> tuple[np.ndarray, dict]:
    """A random square crop covering at least ``min_frac`` of the short side, resized."""
    import cv2

    h, w = photo.shape[:2]
    side = int(rng.uniform(min_frac, 1.0) * min(h, w))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = photo[y0 : y0 + side, x0 : x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    out = cv2.resize(crop, (size, size), interpolation=interp)
    return out, {"crop": [x0, y0, side]}


def colour_jitter(rng: np.random.Generator, img: np.ndarray) -> tuple[np.ndarray, dict]:
    """Exposure, contrast, saturation, white balance and gamma jitter (mild, photographic)."""
    exposure = float(rng.uniform(0.8, 1.2))  # global gain
    contrast = float(rng.uniform(0.85, 1.15))  # around the mean grey
    saturation = float(rng.uniform(0.7, 1.25))  # 1 = unchanged
    wb = rng.uniform(0.92, 1.08, size=3).astype(np.float32)  # per-channel white balance
    gamma = float(rng.uniform(0.9, 1.1))
    x = img * exposure * wb
    grey = x.mean(axis=2, keepdims=True)
    x = grey + saturation * (x - grey)
    x = x.mean() + contrast * (x - x.mean())
    x = np.clip(x, 0.0, 1.0) ** gamma
    params = {
        "exposure": exposure,
        "contrast": contrast,
        "saturation": saturation,
        "white_balance": [float(v) for v in wb],
        "gamma": gamma,
    }
    return x.astype(np.float32), params


def random_background(
    rng: np.random.Generator, photos: list[Photo], size: int
) -> tuple[np.ndarray, dict]:
    """A size×size background: random photo, crop, horizontal flip, colour jitter."""
    idx = int(rng.integers(len(photos)))
    img, crop = random_crop(rng, photos[idx].pixels, size)
    flip = bool(rng.random() < 0.5)
    if flip:
        img = img[:, ::-1]
    img, jitter = colour_jitter(rng, img)
    return np.ascontiguousarray(img), {"photo": photos[idx].name, **crop, "flip": flip, **jitter}
