"""Layer-table rows → training tensors, with peeling targets, crops and degradations.

The model peels one object at a time (see ``docs/architecture.md``). A stack with k
objects therefore yields k + 1 training problems, one per *level* j:

* input = the stack composited with its first j objects,
* target object = object j (the top one at that level) with its shadow,
* target background = the stack composited with its first j − 1 objects;

j = 0 is the "nothing left to peel" case (alpha 0, attenuation 1, background = input).

Prompts: with probability ``prompt_prob`` a sample gets a prompt (mask, box or points).
Degradation-restoration: a share of the prompted samples (``degrade_prob`` of all samples)
instead gets a mask prompt made from its alpha eroded, dilated or blurred, and its object
boundary band blurred in the input; the sample is flagged ``degraded`` and the losses ask
for the clean alpha and colour (:func:`liwi.losses.degradation_restoration`); a share
``shadow_prompt_prob`` of those masks also covers the object's cast shadow (a salient
prior's typical error), so the clean alpha teaches the network to cut it out. Drawing the
degraded samples from the prompted ones keeps the share of unprompted samples the same
with the objective on or off (an ablation would otherwise change two things at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from liwi.lake import S3Options
from liwi.layers import LayerStack


class DataConfig(BaseModel):
    """How samples are drawn from a layer table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crop: int = Field(128, ge=16)  # side of the square training crop (multiple of 2^depth)
    scale_min: float = Field(1.0, gt=0)  # random rescale of the short side relative to crop
    scale_max: float = Field(1.3, gt=0)  # … upper bound
    flip_prob: float = Field(0.5, ge=0, le=1)  # horizontal flip
    empty_prob: float = Field(0.1, ge=0, le=1)  # level 0: nothing left to peel
    top_prob: float = Field(0.6, ge=0, le=1)  # peel the top object (else a lower level)
    prompt_prob: float = Field(0.5, ge=0, le=1)  # give a prompt (else all-zero channels)
    # degradation-restoration samples, drawn from the prompted ones (≤ prompt_prob), so the
    # share of unprompted "main object" samples does not depend on this objective
    degrade_prob: float = Field(0.3, ge=0, le=1)
    degrade_max_px: int = Field(4, ge=1)  # largest erosion/dilation/blur radius, pixels
    # share of the degraded samples whose mask prompt also covers part of the object's own
    # cast shadow, as a salient prior's mask does on rendered scenes: the clean alpha the
    # losses ask for leaves it out, so the network learns to cut a shadow out of a prompt
    shadow_prompt_prob: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _degraded_are_prompted(self) -> DataConfig:
        if self.degrade_prob > self.prompt_prob:
            raise ValueError(
                f"degrade_prob {self.degrade_prob} > prompt_prob {self.prompt_prob}: degraded "
                "samples are a share of the prompted ones"
            )
        return self


@dataclass
class PeelTarget:
    """One peeling problem at native resolution (H×W×C float32)."""

    image: np.ndarray
    alpha: np.ndarray  # H×W×1
    color: np.ndarray
    background: np.ndarray
    shadow: np.ndarray  # H×W×3 attenuation of the peeled object's shadow

    def stacked(self) -> np.ndarray:
        return np.concatenate(
            [self.image, self.alpha, self.color, self.background, self.shadow], axis=2
        )

    @classmethod
    def unstack(cls, arr: np.ndarray) -> PeelTarget:
        return cls(arr[..., 0:3], arr[..., 3:4], arr[..., 4:7], arr[..., 7:10], arr[..., 10:13])


def peel_target(stack: LayerStack, level: int, flat_image: np.ndarray | None = None) -> PeelTarget:
    """The peeling problem of ``stack`` at ``level`` (0 ≤ level ≤ number of objects).

    ``flat_image`` is the row's photo (possibly blurred, noisy, JPEG-compressed); it is
    the input at the top level, where it exists, so the model learns to restore clean
    layers from what a camera delivers. Lower levels use the clean composite.
    """
    k = len(stack.objects)
    if not 0 <= level <= k:
        raise ValueError(f"level {level} outside 0..{k}")
    if flat_image is not None and level == k and flat_image.shape[:2] == stack.size:
        image = np.asarray(flat_image, np.float32)
    else:
        image = stack.composite(upto=level)
    h, w = stack.size
    if level == 0:
        return PeelTarget(
            image,
            np.zeros((h, w, 1), np.float32),
            image.copy(),
            image.copy(),
            np.ones((h, w, 3), np.float32),
        )
    obj = stack.objects[level - 1]
    return PeelTarget(
        image=image,
        alpha=obj.alpha[..., None].copy(),
        color=obj.rgba[..., :3].copy(),
        background=stack.composite(upto=level - 1),
        shadow=np.clip(obj.attenuation, 0.0, 1.0),
    )


def choose_level(n_objects: int, cfg: DataConfig, rng: np.random.Generator) -> int:
    """Random peeling level: 0 (empty), the top object, or a lower one."""
    if n_objects == 0 or rng.random() < cfg.empty_prob:
        return 0
    if n_objects == 1 or rng.random() < cfg.top_prob:
        return n_objects
    return int(rng.integers(1, n_objects))


def random_resized_crop(arr: np.ndarray, cfg: DataConfig, rng: np.random.Generator) -> np.ndarray:
    """Rescale so the short side is crop × U(scale_min, scale_max), random crop, flip."""
    import cv2

    h, w = arr.shape[:2]
    short = cfg.crop * rng.uniform(cfg.scale_min, cfg.scale_max)
    f = max(short / min(h, w), cfg.crop / h, cfg.crop / w)
    nh, nw = max(cfg.crop, round(h * f)), max(cfg.crop, round(w * f))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
        chans = [
            cv2.resize(arr[..., i : i + 4], (nw, nh), interpolation=interp)
            for i in range(0, arr.shape[2], 4)
        ]
        arr = np.concatenate([c if c.ndim == 3 else c[..., None] for c in chans], axis=2)
    y = int(rng.integers(0, nh - cfg.crop + 1))
    x = int(rng.integers(0, nw - cfg.crop + 1))
    arr = arr[y : y + cfg.crop, x : x + cfg.crop]
    if rng.random() < cfg.flip_prob:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr, dtype=np.float32)


def degrade_mask(alpha: np.ndarray, max_px: int, rng: np.random.Generator) -> np.ndarray:
    """Erode, dilate or blur a H×W alpha by a random radius in 1..max_px."""
    import cv2

    r = int(rng.integers(1, max_px + 1))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    op = rng.integers(0, 3)
    if op == 0:
        out = cv2.erode(alpha, kernel)
    elif op == 1:
        out = cv2.dilate(alpha, kernel)
    else:
        out = cv2.GaussianBlur(alpha, (0, 0), sigmaX=float(r))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# Shadow in a prompt: pixels the object's shadow darkens by more than SHADOW_PROMPT_MIN
# (1 − min_c S) join the mask prompt with a random strength in SHADOW_PROMPT_COVER, as the
# prior's soft mask spills onto a shadow at partial confidence.
SHADOW_PROMPT_MIN = 0.1
SHADOW_PROMPT_COVER = (0.5, 1.0)


def add_shadow_to_prompt(
    mask: np.ndarray, shadow: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A H×W mask prompt that also covers the object's cast shadow (H×W×3 attenuation)."""
    import cv2

    dark = ((1.0 - shadow.min(axis=2)) > SHADOW_PROMPT_MIN).astype(np.float32)
    if not dark.any():
        return mask
    cover = float(rng.uniform(*SHADOW_PROMPT_COVER))
    soft = cv2.GaussianBlur(dark, (0, 0), sigmaX=1.5)  # a prior's edge is soft
    return np.maximum(mask, cover * soft).astype(np.float32)


def boundary_band(alpha: np.ndarray, radius: int) -> np.ndarray:
    """H×W mask (0/1) of pixels within ``radius`` of the object boundary."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    hard = (alpha > 0.5).astype(np.float32)
    return (cv2.dilate(hard, kernel) - cv2.erode(hard, kernel)).clip(0, 1)


def degrade_boundary(image: np.ndarray, alpha: np.ndarray, max_px: int, rng) -> np.ndarray:
    """Blur the input image inside the object's boundary band (a soft, smeared cut-out)."""
    import cv2

    r = int(rng.integers(1, max_px + 1))
    band = boundary_band(alpha, r)[..., None]
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=float(r))
    return (band * blurred + (1 - band) * image).astype(np.float32)


def sample_prompt(
    alpha: np.ndarray, rng: np.random.Generator, kind: str | None = None
) -> np.ndarray:
    """3×H×W prompt channels (mask, box, points) pointing at ``alpha`` (H×W)."""
    from liwi.layers import bbox_of
    from liwi.model.prompts import Prompt, rasterize

    h, w = alpha.shape
    kind = kind or str(rng.choice(["mask", "box", "points"]))
    x0, y0, x1, y1 = bbox_of(alpha, 0.5)
    if x1 <= x0:  # no solid object in view: no prompt
        return np.zeros((3, h, w), np.float32)
    if kind == "mask":
        prompt = Prompt(mask=alpha)
    elif kind == "box":
        j = max(1, int(0.05 * max(x1 - x0, y1 - y0)))  # box jitter, pixels
        dx0, dy0, dx1, dy1 = rng.integers(-j, j + 1, size=4)
        bx0, by0 = min(max(0, x0 + dx0), w - 1), min(max(0, y0 + dy0), h - 1)
        bx1, by1 = max(min(w, x1 + dx1), bx0 + 1), max(min(h, y1 + dy1), by0 + 1)
        prompt = Prompt(box=(bx0, by0, bx1, by1))
    else:
        ys, xs = np.nonzero(alpha > 0.5)
        idx = rng.choice(len(xs), size=min(len(xs), int(rng.integers(1, 4))), replace=False)
        prompt = Prompt(points=[(float(xs[i]), float(ys[i])) for i in idx])
    return rasterize(prompt, (h, w), (h, w))


def make_sample(
    stack: LayerStack,
    cfg: DataConfig,
    rng: np.random.Generator,
    flat_image: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One training sample (C×H×W float32 arrays) drawn from ``stack``."""
    level = choose_level(len(stack.objects), cfg, rng)
    peel = peel_target(stack, level, flat_image)
    target = PeelTarget.unstack(random_resized_crop(peel.stacked(), cfg, rng))
    alpha = target.alpha[..., 0]
    prompt = np.zeros((3, cfg.crop, cfg.crop), np.float32)
    prompted = level > 0 and rng.random() < cfg.prompt_prob
    # P(degraded) = degrade_prob overall: a share degrade_prob / prompt_prob of the prompted
    degraded = prompted and alpha.max() > 0.5 and rng.random() * cfg.prompt_prob < cfg.degrade_prob
    image = target.image
    if degraded:
        prompt[0] = degrade_mask(alpha, cfg.degrade_max_px, rng)
        if cfg.shadow_prompt_prob and rng.random() < cfg.shadow_prompt_prob:
            prompt[0] = add_shadow_to_prompt(prompt[0], target.shadow, rng)
        image = degrade_boundary(image, alpha, cfg.degrade_max_px, rng)
    elif prompted:
        prompt = sample_prompt(alpha, rng)
    chw = lambda a: np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32)  # noqa: E731
    return {
        "image": chw(image),
        "prompt": prompt,
        "alpha": chw(target.alpha),
        "color": chw(target.color),
        "background": chw(target.background),
        "shadow": chw(target.shadow),
        "degraded": np.float32(degraded),
    }


# Columns of a layer table the training path reads (the flat image is the top-level input).
TRAINING_COLUMNS = ["sample_id", "source_uri", "image", "background", "objects", "split", "status"]


def parquet_dataset(uri: str, s3: S3Options | None = None):
    """A layer table's Parquet files as a lazy ``pyarrow.dataset`` (None when there are none).

    Only the files are listed; reads fetch footers and the projected column chunks of the
    row groups a filter keeps, never whole files. Hidden and ``_``-prefixed files are skipped.
    """
    import pyarrow.dataset as pads

    from liwi.lake import Lake

    lake = Lake.from_uri(uri, s3=s3)
    try:
        ds = pads.dataset(lake.root, filesystem=lake.fs, format="parquet")
    except FileNotFoundError:
        return None
    return ds if ds.files else None


def ok_rows(split: str | None):
    """The pyarrow filter of a split's ``ok`` rows (every split when ``split`` is None)."""
    import pyarrow.compute as pc

    keep = pc.field("status") == "ok"
    return keep if split is None else keep & (pc.field("split") == split)


def rows_from_table(
    table_or_uri: Any,
    split: str | None = None,
    limit: int | None = None,
    s3: S3Options | None = None,
    extra_columns: tuple[str, ...] = (),
):
    """The ``ok`` rows (dicts, PNG bytes still encoded) of a layer table or several.

    ``table_or_uri``: a pyarrow Table, a lake URI/path, or a list of those. URIs are read
    with the training columns (and ``extra_columns``) only and the rows filtered in the
    Parquet scan.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    sources = table_or_uri if isinstance(table_or_uri, list | tuple) else [table_or_uri]
    columns = TRAINING_COLUMNS + [c for c in extra_columns if c not in TRAINING_COLUMNS]
    rows: list[dict] = []
    for src in sources:
        if isinstance(src, pa.Table):
            mask = pc.equal(src.column("status"), "ok")
            if split is not None:
                mask = pc.and_(mask, pc.equal(src.column("split"), split))
            table = src.filter(pc.fill_null(mask, False)).select(columns)
        else:
            ds = parquet_dataset(str(src), s3=s3)
            if ds is None:
                continue
            table = ds.to_table(columns=columns, filter=ok_rows(split))
        rows += table.to_pylist()
        if limit is not None and len(rows) >= limit:
            break
    return rows[:limit] if limit is not None else rows


def decode_row(row: dict) -> tuple[LayerStack, np.ndarray | None]:
    """A row's stack and its flat image (None when the row has none)."""
    from liwi.schema import image_of, row_to_stack

    return row_to_stack(row), (image_of(row) if row.get("image") else None)


class StackDataset:
    """A torch-style map dataset over layer-table rows or stacks; every access draws anew.

    Rows stay PNG-encoded in memory and are decoded per access (cheap at training sizes,
    and thousands of samples fit in little RAM). Randomness is seeded per (seed, epoch,
    index), so runs are reproducible and data-loader workers do not repeat each other.
    Call :meth:`set_epoch` each epoch.
    """

    def __init__(self, items: list, cfg: DataConfig, seed: int = 0) -> None:
        if not items:
            raise ValueError("no samples: the layer table has no ok rows for this split")
        self.items, self.cfg, self.seed, self.epoch = items, cfg, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        item = self.items[i]
        stack, flat = (item, None) if isinstance(item, LayerStack) else decode_row(item)
        return make_sample(stack, self.cfg, rng, flat)


def collate(samples: list[dict[str, np.ndarray]]) -> dict:
    """Stack samples into a batch of torch tensors."""
    import torch

    return {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}
