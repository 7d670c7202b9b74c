"""``extract_shadow`` by the decomposition network: the shadow it predicts for the object.

A tool backend that wraps the predictor, so it sits with the agents (room 2 of the import
layering), registered by name in :mod:`liwi.tools.registry` like every backend.

The classical extractor (:mod:`liwi.tools.shadow`) finds a shadow from evidence in the
photo (darker than the lit surround, same hue, attached below the object); on the held-out
320-px synthetic split it finds 15 % of the true shadow (recall), IoU 0.12. This backend asks
the shipped network instead: the object's alpha is its mask prompt for one peel, and the
attenuation it predicts (under the object too) is the shadow layer. The shadow-free
background is ``B = B₀ / S`` as in the classical tool, so ``B ⊙ S = B₀`` wherever ``S``
is above its floor and the stack reproduces the photo.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from liwi.devices import resolve_device
from liwi.tools.base import Tool, ToolParams
from liwi.tools.shadow import (
    ShadowExtractor,
    ShadowInput,
    ShadowOutput,
    checked_input,
    no_shadow,
)


class ModelShadowParams(ToolParams):
    threshold: float = Field(
        0.98, gt=0.0, le=1.0, description="a pixel is in the shadow where S is below this"
    )
    min_area: float = Field(
        0.02, ge=0.0, le=1.0, description="smallest shadow, as a fraction of the object's area"
    )
    min_attenuation: float = Field(
        0.05, ge=0.0, lt=1.0, description="floor of S, so B = B₀ / S stays bounded"
    )


class ModelShadowExtractor(Tool[ShadowInput, ShadowOutput]):
    """The shipped network's shadow for a given object (mask-prompted peel)."""

    name = "extract_shadow"
    description = ShadowExtractor.description
    Params = ModelShadowParams
    backend = "model"

    def __init__(self, model: str | None = None, device: str = "auto") -> None:
        """``model``: a checkpoint URI (None = the shipped default network)."""
        super().__init__()
        self.model = model
        self.device = device  # "auto": the GPUs Ray gave this worker (liwi.devices)
        self.predictor = None

    def _setup(self) -> None:
        from liwi.predictor import Predictor

        # the network alone: the object is given, so no prior is needed to choose it
        self.predictor = Predictor.from_uri(
            self.model, device=resolve_device(self.device), prior=None
        )

    def run(self, inputs: ShadowInput, params: ModelShadowParams) -> ShadowOutput:
        from liwi.model.prompts import Prompt

        image, alpha, bg0, obj = checked_input(inputs)
        stack = self.predictor.decompose(image, prompt=Prompt(mask=alpha), max_layers=2)
        if not stack.objects:
            return no_shadow(bg0)
        s = np.asarray(stack.objects[-1].attenuation, np.float32)  # H×W×3 S of the peel
        region = (s.min(axis=2) < params.threshold) & ~obj
        if region.sum() < params.min_area * obj.sum():
            return no_shadow(bg0)
        s = np.clip(s, params.min_attenuation, 1.0)
        background = np.clip(bg0 / s, 0.0, 1.0).astype(np.float32)
        grey_s = s.mean(axis=2)
        return ShadowOutput(
            attenuation=s,
            background=background,
            region=region.astype(np.float32),
            found=True,
            stats={
                "area": float(region.mean()),
                "area_vs_object": float(region.sum() / obj.sum()),
                "mean_attenuation": float(grey_s[region].mean()),
                "min_attenuation": float(grey_s.min()),
            },
        )
