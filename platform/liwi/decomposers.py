"""One interface for every way of decomposing a photo: ``build_decomposer(method, …)``.

* ``model`` — the LiWi network (:class:`liwi.predictor.Predictor`), with the pretrained
  salient prior choosing the objects unless ``prior=None``;
* ``add`` — the ADD tool chain as the cluster job runs it: the default agent (segment →
  refine_alpha → inpaint → extract_shadow → curate, retries), its best attempt's layers;
* ``prior`` — the pretrained salient-object prior alone: its objects with the photo's own
  colours, no shadow, the background inpainted under them.

Each returns an object with ``source`` and ``decompose(image, prompt=None, max_layers=N)
-> LayerStack``; the CLI, the API and the evaluator pick one by name, so every method is
written to the same output contract and scored the same way.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from liwi.assembly import HOLE_ALPHA, fill_hole
from liwi.layers import LayerStack, ObjectLayer
from liwi.model.prompts import Prompt
from liwi.predictor import (
    DEFAULT_MAX_LAYERS,
    PRIOR_MIN_AREA,
    PRIOR_REL_AREA,
    PredictorError,
    as_input_image,
)
from liwi.weights import DEFAULT_WEIGHT

METHODS = ("model", "add", "prior")


class Decomposer(Protocol):
    """Anything that maps a photo (+ optional prompt) to a :class:`LayerStack`."""

    source: str

    def decompose(
        self, image: Any, prompt: Prompt | None = None, max_layers: int = DEFAULT_MAX_LAYERS
    ) -> LayerStack: ...


class PriorDecomposer:
    """The salient prior alone: object alphas, the photo's colours, no shadow."""

    def __init__(
        self, weight: str | None = DEFAULT_WEIGHT, device: str | None = None, salient: Any = None
    ) -> None:
        """``salient``: an already loaded SalientPrior to share (e.g. a Predictor's)."""
        from liwi.priors.salient import SalientPrior
        from liwi.weights import WeightsError

        try:
            self.prior = salient if salient is not None else SalientPrior(weight, device=device)
        except WeightsError as exc:
            raise PredictorError(str(exc)) from exc
        self.source = f"prior:{self.prior.weight}"

    def decompose(
        self, image: Any, prompt: Prompt | None = None, max_layers: int = DEFAULT_MAX_LAYERS
    ) -> LayerStack:
        from liwi.priors.refine import box_mask, edge_colours, grow_px, instances

        img = as_input_image(image)
        if max_layers < 1:
            raise PredictorError(f"max_layers must be ≥ 1 (background only), got {max_layers}")
        h, w = img.shape[:2]
        maps, answered = self.prior.maps_with_source(img)  # its base's when it was unsure
        alpha = self.prior.alpha(img, maps)
        grow = grow_px(img.shape)
        if prompt is not None and not prompt.empty:
            prompt.validate(h, w)
            if prompt.points:
                raise PredictorError("the prior method takes a box or mask prompt, not points")
            keep = np.ones_like(alpha)
            if prompt.box is not None:
                keep = box_mask(alpha.shape, prompt.box)
            if prompt.mask is not None:  # the prior's map within reach of the mask
                import cv2

                near = (np.asarray(prompt.mask) > 0.5).astype(np.uint8)
                near = cv2.dilate(near, np.ones((2 * grow + 1,) * 2, np.uint8))
                keep = keep * near
            alpha = alpha * keep
        objs = instances(
            alpha, max_layers - 1, PRIOR_MIN_AREA, PRIOR_REL_AREA, grow, merge_rest=True
        )
        no_shadow = np.ones((h, w), np.float32)
        layers = [
            ObjectLayer.from_maps(
                edge_colours(img, a),
                a,
                no_shadow,
                label="salient object",
                scores={"area": float(a.mean())},
            )
            for a in objs
        ]
        union = np.max(objs, axis=0) if objs else np.zeros((h, w), np.float32)
        background = fill_hole(img, union > HOLE_ALPHA)
        meta = {
            "model": self.source,
            "prior": self.prior.weight,
            "prior_answer": answered,
            "peel_passes": len(layers),
        }
        # instances come nearest first; a stack lists objects back to front
        return LayerStack(background=background, objects=layers[::-1], meta=meta)


class AddDecomposer:
    """The ADD job's default agent on one photo (its best attempt, passed or not)."""

    def __init__(self, prior: str | None = DEFAULT_WEIGHT) -> None:
        """``prior``: the salient segmenter's weight; None = the classical segmenter."""
        self.prior = prior
        self.source = f"add:rule_based+{prior or 'classical'}"
        self._agents: dict[int, Any] = {}  # by max_objects: tools load their weights once

    def _agent(self, max_objects: int):
        from liwi.agents import build_agent

        if max_objects not in self._agents:
            segment = {"backend": "salient", "config": {"weight": self.prior}}
            if self.prior is None:
                segment = {"backend": "classical"}
            config = {"max_objects": max_objects, "tools": {"segment": segment}}
            self._agents[max_objects] = build_agent(config)
        return self._agents[max_objects]

    def decompose(
        self, image: Any, prompt: Prompt | None = None, max_layers: int = DEFAULT_MAX_LAYERS
    ) -> LayerStack:
        img = as_input_image(image)
        if prompt is not None and not prompt.empty:
            raise PredictorError("the add method takes no prompt (the agent picks the objects)")
        if max_layers < 1:
            raise PredictorError(f"max_layers must be ≥ 1 (background only), got {max_layers}")
        if max_layers == 1:
            return LayerStack(background=img, meta={"model": self.source})
        result = self._agent(min(2, max_layers - 1)).run(img)
        stack = result.stack or LayerStack(background=img)
        stack.meta = {
            **(stack.meta or {}),
            "model": self.source,
            "passed": bool(result.verdict and result.verdict.passed),
            "reasons": list(result.reasons),
        }
        return stack


def build_decomposer(
    method: str = "model",
    model: str | None = None,
    prior: str | None = DEFAULT_WEIGHT,
    device: str | None = None,
) -> Decomposer:
    """The decomposer called ``method``; ``model`` is the network's URI (``model`` only)."""
    if method == "model":
        from liwi.predictor import Predictor

        return Predictor.from_uri(model, device=device, prior=prior)
    if method == "prior":
        if prior is None:
            raise PredictorError("the prior method needs a prior weight (not 'none')")
        return PriorDecomposer(prior, device=device)
    if method == "add":
        return AddDecomposer(prior)
    raise PredictorError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
