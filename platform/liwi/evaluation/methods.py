"""The decomposers an evaluation compares: our model and the baselines.

Each method maps a flat RGB image to a :class:`~liwi.layers.LayerStack` with at most
``max_layers`` layers:

* ``model`` — :class:`liwi.predictor.Predictor` (a checkpoint, lake or ``models:/`` URI);
* ``identity`` — the input as the background and nothing else (what "doing nothing"
  scores; background L1 in shadow regions equals the shadow's darkening);
* ``prior`` — the pretrained salient-object prior alone (U²-Netp: objects with the
  photo's colours, no shadow, background inpainted; :class:`liwi.decomposers.PriorDecomposer`);
* ``classical`` — the classical ADD tool chain of :mod:`liwi.tools` (saliency
  segmentation, matting, inpainting, shadow extraction), peeling like the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from liwi.layers import LayerStack
from liwi.weights import DEFAULT_WEIGHT

Decompose = Callable[[np.ndarray, int], LayerStack]
BASELINES = ("identity", "classical", "prior")


@dataclass
class Method:
    """A named decomposer."""

    name: str
    decompose: Decompose
    description: str


def identity_method() -> Method:
    def decompose(image: np.ndarray, max_layers: int) -> LayerStack:
        return LayerStack(background=np.asarray(image, np.float32), objects=[])

    return Method("identity", decompose, "background = input, no objects, no shadow")


def model_method(
    uri: str | None,
    device: str | None = None,
    name: str = "model",
    prior: str | None = DEFAULT_WEIGHT,
) -> Method:
    from liwi.predictor import Predictor

    predictor = Predictor.from_uri(uri, device=device, prior=prior)

    def decompose(image: np.ndarray, max_layers: int) -> LayerStack:
        return predictor.decompose(image, max_layers=max_layers)

    return Method(name, decompose, f"LiWi model {predictor.source}")


def prior_method(weight: str | None = None, device: str | None = None) -> Method:
    from liwi.decomposers import PriorDecomposer

    prior = PriorDecomposer(weight or DEFAULT_WEIGHT, device=device)

    def decompose(image: np.ndarray, max_layers: int) -> LayerStack:
        return prior.decompose(image, max_layers=max_layers)

    return Method("prior", decompose, f"pretrained salient prior alone ({prior.source})")


def classical_method() -> Method:
    """The classical ADD tool chain, peeling like the model.

    Per pass: segment (the most salient candidate) → refine_alpha → inpaint the object
    away → extract_shadow (shadow layer + shadow-free background); the next pass runs on
    that background.
    """
    from liwi.layers import ObjectLayer
    from liwi.tools.inpaint import InpaintInput
    from liwi.tools.matting import MattingInput
    from liwi.tools.registry import get_tool
    from liwi.tools.segment import SegmentInput
    from liwi.tools.shadow import ShadowInput

    segment, refine = get_tool("segment"), get_tool("refine_alpha")
    inpaint, shadow = get_tool("inpaint"), get_tool("extract_shadow")

    def decompose(image: np.ndarray, max_layers: int) -> LayerStack:
        current = np.asarray(image, np.float32)
        peeled: list[ObjectLayer] = []
        for _ in range(max_layers - 1):
            cands = segment(SegmentInput(image=current)).candidates
            if not cands:
                break
            matte = refine(MattingInput(image=current, mask=cands[0].mask))
            hole = (matte.alpha > 0.05).astype(np.float32)
            filled = inpaint(InpaintInput(image=current, mask=hole)).image
            sh = shadow(ShadowInput(image=current, alpha=matte.alpha, background=filled))
            peeled.append(ObjectLayer.from_maps(matte.foreground, matte.alpha, sh.attenuation))
            current = sh.background
        return LayerStack(background=current, objects=peeled[::-1])

    return Method("classical", decompose, "classical ADD tools (segment, matting, inpaint, shadow)")


def build_methods(
    model_uri: str | None,
    baselines: list[str],
    device: str | None = None,
    prior: str | None = DEFAULT_WEIGHT,
) -> list[Method]:
    """The model (with ``prior``, None = the network alone) plus the requested baselines."""
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:  # fail before loading anything
        raise ValueError(f"unknown baseline(s) {unknown} (choose from {list(BASELINES)})")
    methods = [model_method(model_uri, device=device, prior=prior)]
    for name in baselines:
        if name == "identity":
            methods.append(identity_method())
        elif name == "prior":
            methods.append(prior_method(prior, device=device))
        else:  # classical
            methods.append(classical_method())
    return methods
