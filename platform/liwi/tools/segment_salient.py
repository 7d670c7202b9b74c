"""``segment`` with a pretrained salient-object network first and the classical one second.

Candidates: the objects of the U²-Net family prior (:class:`liwi.priors.salient.SalientPrior`,
split into instances, nearest first), then the classical saliency + GrabCut candidates
that do not overlap them (:class:`liwi.tools.segment.ClassicalSegmenter`). The agent takes
candidates in order and swaps in the next one when the curator rejects a layer, so the
classical segmentation is the fallback it tries second. A box prompt keeps the prior's
map inside the box; point prompts go to the classical tool alone. An input that carries
the prior's map (``SegmentInput.saliency``, from ADD's batched ``segment`` stage) skips the
network; the rest (stretch, resize, instances) is the same.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from liwi.devices import resolve_device
from liwi.tools.arrays import as_image
from liwi.tools.base import Tool, ToolError, ToolParams
from liwi.tools.segment import (
    ClassicalSegmenter,
    ClassicalSegmentParams,
    MaskCandidate,
    SegmentInput,
    SegmentOutput,
    check_prompt,
    dedupe,
    make_candidate,
)


def containment(a: np.ndarray, b: np.ndarray) -> float:
    """|a ∩ b| / min(|a|, |b|) of two masks (> 0.5): 1 when one lies inside the other."""
    ma, mb = a > 0.5, b > 0.5
    return float((ma & mb).sum()) / max(1, min(int(ma.sum()), int(mb.sum())))


class SalientSegmentParams(ToolParams):
    max_candidates: int = Field(4, ge=1, le=16, description="most candidates returned")
    min_area: float = Field(0.005, ge=0.0, le=1.0, description="smallest object, image fraction")
    rel_area: float = Field(
        0.08, ge=0.0, le=1.0, description="smallest object relative to the largest one"
    )
    max_overlap: float = Field(
        0.5, ge=0.0, le=1.0, description="drop candidates overlapping a better one above this"
    )
    classical_fallback: bool = Field(
        True, description="append the classical candidates after the prior's"
    )


class SalientSegmenter(Tool[SegmentInput, SegmentOutput]):
    """U²-Net family prior (pretrained weights), classical candidates as fallbacks."""

    name = "segment"
    description = ClassicalSegmenter.description
    Params = SalientSegmentParams
    backend = "salient"

    def __init__(self, weight: str | None = None, device: str = "auto") -> None:
        super().__init__()
        self.weight = weight
        self.device = device  # "auto": the GPUs Ray gave this worker (liwi.devices)
        self.prior = None

    def _setup(self) -> None:
        from liwi.priors.salient import SalientPrior

        self.prior = SalientPrior(self.weight, device=resolve_device(self.device))

    @property
    def licence(self) -> str:
        from liwi import weights

        return weights.licence_of(self.weight)

    def run(self, inputs: SegmentInput, params: SalientSegmentParams) -> SegmentOutput:
        from liwi.priors.refine import box_mask, grow_px, instances

        image = as_image(inputs.image)
        h, w = image.shape[:2]
        check_prompt(inputs, (h, w))
        cands: list[MaskCandidate] = []
        alpha = None
        n_prior = 0
        if not inputs.points:
            maps = None if inputs.saliency is None else np.asarray(inputs.saliency)[None]
            alpha = self.prior.alpha(image, maps=maps)
            if inputs.box is not None:
                alpha = alpha * box_mask(alpha.shape, inputs.box)
            grow = grow_px(image.shape)
            for m in instances(
                alpha, params.max_candidates, params.min_area, params.rel_area, grow
            ):
                hard = (m > 0.5).astype(np.float32)
                # confidence: how decided the prior is over the object (1 = crisp 0/1 map)
                decided = float(np.abs(2 * m[hard > 0] - 1).mean()) if hard.any() else 0.0
                cands.append(make_candidate(hard, score=0.5 + 0.5 * decided))
            n_prior = len(cands)
        if params.classical_fallback:
            try:
                classical = ClassicalSegmenter()(inputs, ClassicalSegmentParams())
            except ToolError:
                classical = None
            for c in classical.candidates if classical else []:
                # a classical mask mostly inside (or around) a prior object is a piece or a
                # copy of it, not another object: a cat face inside the whole cat
                if all(containment(c.mask, p.mask) <= params.max_overlap for p in cands[:n_prior]):
                    cands.append(MaskCandidate(c.mask, min(c.score, 0.6), c.bbox, c.area))
        out = dedupe(cands, params.max_overlap, params.max_candidates)
        if not out:
            raise ToolError("no salient object found (prior and classical both empty)")
        return SegmentOutput(candidates=out, saliency=alpha)
