"""Photographs as samples of the prior fine-tune, with the teacher's maps as their targets.

The layer tables teach the prior to leave cast shadows out, but their objects are rendered
or pasted: a prior fine-tuned on them alone forgets photographed, frame-filling objects
(the sample cat became its two eyes; ``benchmarks/RESULTS.md``, thirteenth session). Mixing
unlabelled photographs into the batches, each labelled by a teacher prior (the starting
weight, its second opinion included), keeps what the prior does on photographs while the
tables move it elsewhere (distillation, "learning without forgetting"). Half the photo
samples are crops cut by the frame: close-ups are where the shipped prior is weakest, and
where its second opinion gives the better target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")  # what a photo folder is read for
PHOTO_LONG_SIDE = 640  # photos are kept at most this long in memory: the prior reads 320²
WHOLE_PHOTO_PROB = 0.5  # share of photo samples that are the whole photo, not a crop


def photo_files(paths: list[str]) -> list[Path]:
    """The photo files named by ``paths`` (files, or folders read for image suffixes)."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"photos: {entry} is neither a file nor a folder")
    if not files:
        raise ValueError(f"photos: no {'/'.join(PHOTO_SUFFIXES)} file in {paths}")
    return files


def load_photos(paths: list[str]) -> list[np.ndarray]:
    """Every photo of ``paths`` as float32 RGB in [0, 1], longest side ≤ ``PHOTO_LONG_SIDE``."""
    from PIL import Image

    photos = []
    for file in photo_files(paths):
        with Image.open(file) as im:
            im = im.convert("RGB")
            im.thumbnail((PHOTO_LONG_SIDE, PHOTO_LONG_SIDE), Image.Resampling.LANCZOS)
            photos.append(np.asarray(im, np.float32) / 255.0)
    return photos


def photo_crop(photo: np.ndarray, rng: np.random.Generator, crop_min: float) -> np.ndarray:
    """The whole photo (``WHOLE_PHOTO_PROB``) or a crop of ``U(crop_min, 1)`` of each side at
    a random place: an object cut by the frame, as a close-up photo's is."""
    if rng.random() < WHOLE_PHOTO_PROB:
        return photo
    h, w = photo.shape[:2]
    ch = max(8, int(round(h * rng.uniform(crop_min, 1.0))))
    cw = max(8, int(round(w * rng.uniform(crop_min, 1.0))))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return photo[top : top + ch, left : left + cw]


class PhotoTeacher:
    """The prior whose fused map labels photo samples (its second opinion included)."""

    def __init__(self, weight: str, photos: list[np.ndarray]) -> None:
        from liwi.priors.salient import SalientPrior

        self.weight = weight
        self.prior = SalientPrior(weight, threads=1)
        self.photos = photos
        self._wanted: list[np.ndarray] | None = None  # its alphas of the whole photos, once

    def maps(self, image: np.ndarray) -> np.ndarray:
        """The teacher's seven maps of ``image`` (its own, or its base's when it asks)."""
        return self.prior.maps_with_source(image)[0]

    def target(self, image: np.ndarray) -> np.ndarray:
        """The teacher's fused map of ``image`` (its input side², in [0, 1])."""
        return self.maps(image)[0]

    def sample(self, rng: np.random.Generator, crop_min: float) -> tuple[np.ndarray, np.ndarray]:
        """A random photo sample (H×W×3) and the teacher's map of it (side×side)."""
        image = photo_crop(self.photos[int(rng.integers(len(self.photos)))], rng, crop_min)
        return image, self.target(image)

    def agreement(self, trunk) -> float:
        """Mean soft IoU between the alpha of a torch ``trunk`` and the teacher's alpha on
        the whole photos: how much of the teacher the fine-tune keeps on photographs."""
        from liwi.metrics.layers import map_soft_iou
        from liwi.priors.salient import SalientPrior

        if self._wanted is None:  # the teacher does not change: its alphas are computed once
            self._wanted = [self.prior.alpha(p, self.maps(p)) for p in self.photos]
        trunk.eval()
        student = SalientPrior(trunk=trunk)
        scores = []
        for photo, want in zip(self.photos, self._wanted, strict=True):
            small = student.small(photo).transpose(2, 0, 1)[None]
            scores.append(map_soft_iou(student.alpha(photo, student.batch_maps(small)[0]), want))
        return float(np.mean(scores))
