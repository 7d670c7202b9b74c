"""``segment`` backed by SAM 2 (the ``sam2`` package).

The model is built from a config packaged with ``sam2`` (e.g.
``configs/sam2.1/sam2.1_hiera_t.yaml``, optionally with Hydra overrides) and its
weights come from a checkpoint file at a local path or lake URI. Loading is strict:
missing or unexpected keys are an error, never a silently half-random model.

Without a prompt the automatic mask generator proposes masks on a point grid; with a
box and/or points the image predictor answers that prompt.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from pydantic import Field

from liwi.devices import resolve_device
from liwi.tools.arrays import as_image
from liwi.tools.artifacts import read_artifact, set_torch_threads
from liwi.tools.base import Tool, ToolError, ToolParams
from liwi.tools.segment import (
    MaskCandidate,
    SegmentInput,
    SegmentOutput,
    border_share,
    check_prompt,
    dedupe,
    make_candidate,
)

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


class Sam2SegmentParams(ToolParams):
    max_candidates: int = Field(3, ge=1, le=64, description="most candidates returned")
    min_area: float = Field(0.005, ge=0.0, le=1.0, description="smallest mask, fraction of image")
    max_area: float = Field(0.85, ge=0.0, le=1.0, description="largest mask, fraction of image")
    points_per_side: int = Field(
        16, ge=2, le=64, description="automatic mode: prompt grid is this many points per side"
    )
    pred_iou_thresh: float = Field(
        0.7, ge=0.0, le=1.0, description="automatic mode: drop masks SAM rates below this IoU"
    )
    stability_score_thresh: float = Field(
        0.9, ge=0.0, le=1.0, description="automatic mode: drop masks unstable under thresholds"
    )
    multimask: bool = Field(
        True, description="prompt mode: ask for 3 masks (ambiguous prompts) instead of 1"
    )
    max_overlap: float = Field(0.7, ge=0.0, le=1.0, description="drop candidates above this IoU")


def load_state_dict_strict(model: Any, blob: bytes, source: str) -> None:
    """Load a SAM 2 checkpoint (``{"model": state_dict}`` or a bare state dict) strictly."""
    import torch

    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors: a corrupt or non-torch file
        raise ToolError(f"{source}: not a readable torch checkpoint ({exc})") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ToolError(f"{source}: checkpoint holds {type(state).__name__}, not a state dict")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ToolError(
            f"{source}: checkpoint does not match the config "
            f"(missing {len(missing)} keys, e.g. {missing[:3]}; "
            f"unexpected {len(unexpected)}, e.g. {unexpected[:3]})"
        )


class Sam2Segmenter(Tool[SegmentInput, SegmentOutput]):
    """SAM 2: automatic masks or box/point prompts."""

    name = "segment"
    description = (
        "Find candidate foreground objects with SAM 2 and return their binary masks, best "
        "first. Optionally guided by a box (x0, y0, x1, y1) or object/background points."
    )
    Params = Sam2SegmentParams
    backend = "sam2"

    def __init__(
        self,
        checkpoint: str | None = None,
        model_cfg: str = DEFAULT_CONFIG,
        device: str = "auto",
        hydra_overrides: list[str] | None = None,
        num_threads: int | None = None,
    ) -> None:
        """``checkpoint``: local path or lake URI of the weights (required).

        ``model_cfg``: a config name packaged with ``sam2``; ``hydra_overrides``: extra
        ``++key=value`` overrides (e.g. a smaller ``model.image_size``); ``device``: torch
        device; ``"auto"`` follows the GPUs Ray gave the worker (:mod:`liwi.devices`).
        """
        super().__init__()
        self.checkpoint = checkpoint
        self.model_cfg = model_cfg
        self.device = device
        self.num_threads = num_threads  # torch CPU threads per worker (None: torch default)
        self.hydra_overrides = list(hydra_overrides or [])
        self.model: Any = None
        self._predictor: Any = None  # one SAM2ImagePredictor per tool (its setup is costly)
        self._generators: dict[tuple, Any] = {}  # automatic generators by grid/thresholds

    def _setup(self) -> None:
        if not self.checkpoint:
            raise ToolError("sam2 segment needs a checkpoint (local path or lake URI)")
        blob = read_artifact(self.checkpoint)
        from sam2.build_sam import build_sam2

        set_torch_threads(self.num_threads)
        try:
            model = build_sam2(
                self.model_cfg,
                ckpt_path=None,
                device="cpu",
                mode="eval",
                hydra_overrides_extra=self.hydra_overrides,
            )
        except Exception as exc:  # unknown config names, bad overrides
            raise ToolError(f"cannot build SAM 2 from {self.model_cfg!r}: {exc}") from exc
        load_state_dict_strict(model, blob, str(self.checkpoint))
        self.device = resolve_device(self.device)  # the actor's GPUs, not the driver's
        self.model = model.to(self.device).eval()

    def _image_predictor(self) -> Any:
        if self._predictor is None:
            from sam2.sam2_image_predictor import SAM2ImagePredictor

            self._predictor = SAM2ImagePredictor(self.model)
            fit_feature_sizes(self._predictor, self.model.image_size)
        return self._predictor

    def _generator(self, params: Sam2SegmentParams) -> Any:
        key = (params.points_per_side, params.pred_iou_thresh, params.stability_score_thresh)
        if key not in self._generators:
            from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

            gen = SAM2AutomaticMaskGenerator(
                self.model,
                points_per_side=params.points_per_side,
                pred_iou_thresh=params.pred_iou_thresh,
                stability_score_thresh=params.stability_score_thresh,
            )
            fit_feature_sizes(gen.predictor, self.model.image_size)
            self._generators[key] = gen
        return self._generators[key]

    def run(self, inputs: SegmentInput, params: Sam2SegmentParams) -> SegmentOutput:
        import torch

        image = as_image(inputs.image)
        check_prompt(inputs, image.shape[:2])
        img8 = (image * 255 + 0.5).astype(np.uint8)
        with torch.inference_mode():
            if inputs.has_prompt:
                cands = self._prompted(img8, inputs, params)
            else:
                cands = self._automatic(img8, params)
        out = dedupe(cands, params.max_overlap, params.max_candidates)
        if not out:
            raise ToolError("SAM 2 returned no mask within the area limits")
        return SegmentOutput(candidates=out, saliency=None)

    def _prompted(
        self, img8: np.ndarray, inputs: SegmentInput, params: Sam2SegmentParams
    ) -> list[MaskCandidate]:
        predictor = self._image_predictor()
        predictor.set_image(img8)
        kwargs: dict[str, Any] = {"multimask_output": params.multimask}
        if inputs.points:
            kwargs["point_coords"] = np.asarray(inputs.points, np.float32)
            kwargs["point_labels"] = np.asarray(inputs.point_labels, np.int32)
        if inputs.box is not None:
            kwargs["box"] = np.asarray(inputs.box, np.float32)
        masks, scores, _ = predictor.predict(**kwargs)
        order = np.argsort(-np.asarray(scores))
        return [make_candidate(masks[i] > 0.5, float(scores[i])) for i in order]

    def _automatic(self, img8: np.ndarray, params: Sam2SegmentParams) -> list[MaskCandidate]:
        ranked = []
        for rec in self._generator(params).generate(img8):
            mask = np.asarray(rec["segmentation"], bool)
            area = float(mask.mean())
            if not params.min_area <= area <= params.max_area:
                continue
            # masks that run along the image border are usually background (wall, floor)
            score = float(rec["predicted_iou"]) * (1.0 - border_share(mask))
            ranked.append((score * np.sqrt(area), make_candidate(mask, score)))
        ranked.sort(key=lambda r: -r[0])
        return [c for _, c in ranked]


def fit_feature_sizes(predictor: Any, image_size: int) -> None:
    """sam2 1.1 hard-codes the backbone feature sizes of a 1024 px model in its predictor;
    set them from the model's actual input size (so smaller configs work)."""
    s = int(image_size)
    predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
