"""``segment``: candidate object masks for an image, optionally guided by a box or points.

The classical default needs no weights: a saliency map (colour contrast against the image
border, which is usually background, plus the spectral residual of the grey image, times
a mild centre prior) seeds OpenCV GrabCut, once per salient blob or once for a prompt.
Candidates come back largest-salient first (by the share of the image's saliency they
cover). The SAM 2 adapter (:mod:`liwi.tools.segment_sam2`) shares the inputs/outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from liwi.layers import bbox_of
from liwi.tools.arrays import as_image, dilate, erode, resize, scale_for
from liwi.tools.base import Tool, ToolError, ToolParams

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


@dataclass
class SegmentInput:
    """An image and an optional prompt (a box and/or points)."""

    image: np.ndarray  # H×W×3 float32 in [0, 1]
    box: Box | None = None  # x0, y0, x1, y1 (exclusive), pixels of ``image``
    points: list[tuple[float, float]] = field(default_factory=list)  # (x, y) pixels
    point_labels: list[int] = field(default_factory=list)  # 1 = object, 0 = background
    # the salient prior's fused 320×320 map of ``image``, precomputed by a batched model
    # stage (ADD's ``segment``); None: a prior-backed segmenter runs its network itself
    saliency: np.ndarray | None = None

    @property
    def has_prompt(self) -> bool:
        return self.box is not None or bool(self.points)


@dataclass
class MaskCandidate:
    """One candidate object."""

    mask: np.ndarray  # H×W float32 in {0, 1}
    score: float  # confidence in [0, 1] (saliency contrast / predicted IoU)
    bbox: Box  # tight box of the mask, x1/y1 exclusive
    area: float  # fraction of the image covered


@dataclass
class SegmentOutput:
    """Candidates, best first; ``saliency`` is the classical tool's map (None for SAM 2)."""

    candidates: list[MaskCandidate]
    saliency: np.ndarray | None = None  # H×W float32 in [0, 1]


def check_prompt(inputs: SegmentInput, shape: tuple[int, int]) -> None:
    """Raise :class:`ToolError` when the box or points are malformed or off the image."""
    h, w = shape
    if inputs.box is not None:
        if len(inputs.box) != 4:
            raise ToolError(f"box must be (x0, y0, x1, y1), got {inputs.box!r}")
        x0, y0, x1, y1 = (float(v) for v in inputs.box)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise ToolError(f"box {inputs.box!r} is empty or outside the {w}×{h} image")
    if len(inputs.points) != len(inputs.point_labels):
        raise ToolError(f"{len(inputs.points)} points but {len(inputs.point_labels)} point labels")
    for (x, y), lab in zip(inputs.points, inputs.point_labels, strict=True):
        if not (0 <= x < w and 0 <= y < h):
            raise ToolError(f"point ({x}, {y}) is outside the {w}×{h} image")
        if lab not in (0, 1):
            raise ToolError(f"point label must be 0 or 1, got {lab!r}")


def make_candidate(mask: np.ndarray, score: float) -> MaskCandidate:
    mask = mask.astype(np.float32)
    return MaskCandidate(
        mask=mask,
        score=float(np.clip(score, 0.0, 1.0)),
        bbox=bbox_of(mask, 0.5),
        area=float(mask.mean()),
    )


def dedupe(cands: list[MaskCandidate], max_iou: float, limit: int) -> list[MaskCandidate]:
    """Drop candidates overlapping an earlier (better) one by more than ``max_iou``."""
    kept: list[MaskCandidate] = []
    for c in cands:
        m = c.mask > 0.5
        if all(
            (m & (k.mask > 0.5)).sum() / max(1, (m | (k.mask > 0.5)).sum()) <= max_iou for k in kept
        ):
            kept.append(c)
        if len(kept) >= limit:
            break
    return kept


# -- saliency -------------------------------------------------------------------------


def spectral_residual(grey: np.ndarray, side: int = 64) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang 2007) of a grey image, in [0, 1]."""
    import cv2

    small = resize(grey, (side, side))
    spec = np.fft.fft2(small)
    log_amp = np.log(np.abs(spec) + 1e-8)
    residual = log_amp - cv2.blur(log_amp, (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spec)))) ** 2
    sal = cv2.GaussianBlur(sal.astype(np.float32), (0, 0), 2.5)
    sal = resize(sal, grey.shape[:2])
    return normalise(sal)


def border_contrast(
    lab: np.ndarray, border: int, use_bottom: bool = True, clusters: int = 6
) -> np.ndarray:
    """Lab distance of each pixel to the nearest colour cluster of the image border.

    Without ``use_bottom`` the bottom edge and the lower third of the sides are left out:
    objects (people, things on a table) often run into the bottom of the frame.
    """
    import cv2

    h = lab.shape[0]
    side_end = h if use_bottom else int(2 * h / 3)
    parts = [
        lab[:border],
        lab[:side_end, :border],
        lab[:side_end, -border:],
    ]
    if use_bottom:
        parts.append(lab[-border:])
    ring = np.concatenate([p.reshape(-1, 3) for p in parts]).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(ring, clusters, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    flat = lab.reshape(-1, 1, 3)
    dist = np.sqrt(((flat - centres[None]) ** 2).sum(axis=2)).min(axis=1)
    return normalise(dist.reshape(lab.shape[:2]).astype(np.float32), upper_pct=99.0)


def normalise(x: np.ndarray, upper_pct: float = 100.0) -> np.ndarray:
    lo = float(x.min())
    hi = float(np.percentile(x, upper_pct)) if upper_pct < 100 else float(x.max())
    if hi - lo < 1e-8:
        return np.zeros_like(x, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def saliency_map(
    image: np.ndarray, contrast_weight: float, centre_sigma: float, use_bottom: bool = True
) -> np.ndarray:
    """Combined saliency of a (small) RGB image in [0, 1]."""
    import cv2

    h, w = image.shape[:2]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    lab = cv2.bilateralFilter(lab, 7, 12.0, 5.0)  # smooth texture, keep object edges
    contrast = border_contrast(lab, border=max(2, int(0.04 * min(h, w))), use_bottom=use_bottom)
    spectral = spectral_residual(lab[..., 0] / 100.0)
    sal = contrast_weight * contrast + (1.0 - contrast_weight) * spectral
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d2 = ((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2) / (centre_sigma**2)
    sal = sal * (0.4 + 0.6 * np.exp(-0.5 * d2))
    return normalise(cv2.GaussianBlur(sal, (0, 0), max(1.0, 0.01 * max(h, w))))


# -- the tool ---------------------------------------------------------------------------


class ClassicalSegmentParams(ToolParams):
    work_side: int = Field(320, ge=64, le=1024, description="longer side (px) segmentation runs at")
    max_candidates: int = Field(3, ge=1, le=16, description="most candidates returned")
    min_area: float = Field(0.005, ge=0.0, le=1.0, description="smallest mask, fraction of image")
    max_area: float = Field(0.85, ge=0.0, le=1.0, description="largest mask, fraction of image")
    contrast_weight: float = Field(
        0.7, ge=0.0, le=1.0, description="weight of border colour contrast vs spectral residual"
    )
    centre_sigma: float = Field(
        0.35, gt=0.0, le=2.0, description="width of the centre prior (fraction of the image)"
    )
    bottom_is_background: bool = Field(
        False, description="treat the bottom edge as background (off: objects often touch it)"
    )
    grabcut_iters: int = Field(4, ge=1, le=20, description="GrabCut refinement iterations")
    max_overlap: float = Field(0.7, ge=0.0, le=1.0, description="drop candidates above this IoU")


class ClassicalSegmenter(Tool[SegmentInput, SegmentOutput]):
    """Saliency-seeded GrabCut; no weights."""

    name = "segment"
    description = (
        "Find candidate foreground objects in the image and return their binary masks, "
        "best first. Optionally guided by a box (x0, y0, x1, y1) or object/background points."
    )
    Params = ClassicalSegmentParams
    backend = "classical"

    def run(self, inputs: SegmentInput, params: ClassicalSegmentParams) -> SegmentOutput:
        import cv2

        image = as_image(inputs.image)
        h, w = image.shape[:2]
        check_prompt(inputs, (h, w))
        s = scale_for(image.shape, params.work_side)
        sh, sw = max(8, round(h * s)), max(8, round(w * s))
        small = resize(image, (sh, sw))
        sal = saliency_map(
            small, params.contrast_weight, params.centre_sigma, params.bottom_is_background
        )
        img8 = cv2.cvtColor((small * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
        if inputs.has_prompt:
            seeds = [self._prompt_seed(inputs, sal, (sh / h, sw / w))]
        else:
            seeds = self._salient_seeds(sal, params)
        cands = []
        total_sal = float(sal.sum()) + 1e-6
        for seed in seeds:
            fg = grabcut(img8, seed, params.grabcut_iters)
            fg = clean_mask(fg, keep=seed == cv2.GC_FGD, min_pixels=int(0.002 * sh * sw))
            area = float(fg.mean())
            if not fg.any() or (not inputs.has_prompt and not params.min_area <= area):
                continue
            if not inputs.has_prompt and area > params.max_area:
                continue
            contrast = float(sal[fg].mean() - sal[~fg].mean()) if (~fg).any() else 0.0
            mass = float(sal[fg].sum()) / total_sal
            # objects are compact and rarely run along the frame; backgrounds do
            compact = (1.0 - border_share(fg)) ** 2 / np.sqrt(fragments(fg))
            full = resize(fg.astype(np.float32), (h, w)) > 0.5
            cand = make_candidate(full, score=(0.5 + contrast) * compact)
            cands.append((mass * compact, cand))
        cands.sort(key=lambda mc: -mc[0])
        out = dedupe([c for _, c in cands], params.max_overlap, params.max_candidates)
        if not out:
            raise ToolError("no salient object found (saliency too flat or masks out of range)")
        return SegmentOutput(candidates=out, saliency=resize(sal, (h, w)))

    @staticmethod
    def _salient_seeds(sal: np.ndarray, params: ClassicalSegmentParams) -> list[np.ndarray]:
        """GrabCut label maps, one per salient blob (Otsu threshold + components)."""
        import cv2

        sal8 = (sal * 255).astype(np.uint8)
        thr, binary = cv2.threshold(sal8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), 8)
        h, w = sal.shape
        blobs = []
        for i in range(1, n):
            comp = labels == i
            if stats[i, cv2.CC_STAT_AREA] < max(4, 0.25 * params.min_area * h * w):
                continue
            blobs.append((float(sal[comp].sum()), comp))
        blobs.sort(key=lambda b: -b[0])
        # Also offer the union of the top blobs: objects often split into several parts.
        comps = [c for _, c in blobs[: params.max_candidates + 1]]
        if len(comps) > 1:
            comps.insert(1, np.logical_or.reduce(comps[:3]))
        seeds = []
        core_thr = min(254, int(thr + 0.5 * (255 - thr)))
        for comp in comps:
            seeds.append(label_map(comp, sal8 >= core_thr, margin=max(4, int(0.05 * max(h, w)))))
        return seeds

    @staticmethod
    def _prompt_seed(
        inputs: SegmentInput, sal: np.ndarray, scale: tuple[float, float]
    ) -> np.ndarray:
        """GrabCut label map from a box and/or points (in small-image pixels)."""
        import cv2

        h, w = sal.shape
        sy, sx = scale
        r = max(2, int(0.015 * max(h, w)))
        pos = [
            (x * sx, y * sy)
            for (x, y), lab in zip(inputs.points, inputs.point_labels, strict=False)
            if lab
        ]
        neg = [
            (x * sx, y * sy)
            for (x, y), lab in zip(inputs.points, inputs.point_labels, strict=False)
            if not lab
        ]
        if inputs.box is not None:
            x0, y0, x1, y1 = inputs.box
            box = (
                int(x0 * sx),
                int(y0 * sy),
                max(int(x0 * sx) + 2, int(np.ceil(x1 * sx))),
                max(int(y0 * sy) + 2, int(np.ceil(y1 * sy))),
            )
        else:  # a window around the positive points, a third of the image at least
            xs = [p[0] for p in pos]
            ys = [p[1] for p in pos]
            if not xs:
                raise ToolError("points need at least one object (label 1) point without a box")
            half = max(w, h) / 6
            box = (
                int(max(0, min(xs) - half)),
                int(max(0, min(ys) - half)),
                int(min(w, max(xs) + half)),
                int(min(h, max(ys) + half)),
            )
        labels = np.full((h, w), cv2.GC_BGD, np.uint8)
        bx0, by0, bx1, by1 = box
        inner = np.zeros((h, w), bool)
        inner[by0:by1, bx0:bx1] = True
        labels[inner] = cv2.GC_PR_BGD
        labels[inner & (sal >= np.percentile(sal[inner], 50))] = cv2.GC_PR_FGD
        for x, y in pos:
            cv2.circle(labels, (int(x), int(y)), r, int(cv2.GC_FGD), -1)
        for x, y in neg:
            cv2.circle(labels, (int(x), int(y)), r, int(cv2.GC_BGD), -1)
        return labels


def label_map(comp: np.ndarray, core: np.ndarray, margin: int) -> np.ndarray:
    """GrabCut labels for a salient blob: sure background far away, probable near it."""
    import cv2

    labels = np.full(comp.shape, cv2.GC_BGD, np.uint8)
    labels[dilate(comp, margin)] = cv2.GC_PR_BGD
    labels[comp] = cv2.GC_PR_FGD
    sure = erode(comp, 2) & core
    labels[sure] = cv2.GC_FGD
    return labels


def border_share(mask: np.ndarray) -> float:
    """Fraction of the image's border pixels covered by ``mask``."""
    edge = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    return float(edge.mean())


def fragments(mask: np.ndarray) -> int:
    """Number of 8-connected parts of a boolean mask (at least 1)."""
    import cv2

    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return max(1, n - 1)


def grabcut(img_bgr: np.ndarray, labels: np.ndarray, iters: int) -> np.ndarray:
    """Run GrabCut from a label map; returns the foreground as a boolean mask."""
    import cv2

    lab = labels.copy()
    if not np.isin(lab, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        return np.zeros(lab.shape, bool)
    if not np.isin(lab, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        return np.isin(lab, (cv2.GC_FGD, cv2.GC_PR_FGD))
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(img_bgr, lab, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error as exc:  # e.g. one of the GMMs has too few samples
        raise ToolError(f"GrabCut failed: {exc.msg if hasattr(exc, 'msg') else exc}") from exc
    return np.isin(lab, (cv2.GC_FGD, cv2.GC_PR_FGD))


def clean_mask(fg: np.ndarray, keep: np.ndarray, min_pixels: int) -> np.ndarray:
    """Drop specks smaller than ``min_pixels`` (unless they hold sure seeds), fill holes."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), 8)
    out = np.zeros_like(fg)
    for i in range(1, n):
        comp = labels == i
        if stats[i, cv2.CC_STAT_AREA] >= min_pixels or (keep & comp).any():
            out |= comp
    # fill holes: background regions not connected to the border
    inv = (~out).astype(np.uint8)
    n, labels = cv2.connectedComponents(inv, connectivity=4)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])))
    small_holes = [
        i for i in range(1, n) if i not in border and (labels == i).sum() < min_pixels * 4
    ]
    if small_holes:
        out |= np.isin(labels, small_holes)
    return out
