"""``inpaint`` backed by any diffusers inpainting pipeline.

The pipeline is loaded with ``from_pretrained`` from a local folder or a lake URI (the
folder is copied to a temporary directory first); ``AutoPipelineForInpainting`` picks
the class from ``model_index.json`` unless ``pipeline_class`` names one. Nothing is
downloaded from a hub (``local_files_only``).

The hole's neighbourhood is cropped (``context`` × the hole's box), resized to
``work_side`` (a multiple of 8), inpainted, resized back and pasted **inside the hole
only**: every pixel outside the (dilated) mask stays exactly as it was.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from liwi.devices import resolve_device
from liwi.tools.arrays import resize
from liwi.tools.artifacts import artifact_dir, set_torch_threads
from liwi.tools.base import Tool, ToolError, ToolParams
from liwi.tools.inpaint import InpaintInput, InpaintOutput, image_and_hole


class DiffusersInpaintParams(ToolParams):
    prompt: str = Field(
        "empty background, nothing there, seamless", description="what to paint into the hole"
    )
    negative_prompt: str = Field(
        "object, person, animal, text, blurry", description="what the fill must not contain"
    )
    steps: int = Field(20, ge=1, le=200, description="denoising steps")
    guidance_scale: float = Field(5.0, ge=0.0, le=30.0, description="classifier-free guidance")
    strength: float = Field(1.0, gt=0.0, le=1.0, description="1 = ignore the old hole content")
    seed: int = Field(0, description="random seed of the initial noise")
    dilate_px: int = Field(
        8, ge=0, le=64, description="grow the mask by this many px to remove edge halos"
    )
    context: float = Field(
        2.0, ge=1.0, le=8.0, description="crop side = this × the hole's box side (more context)"
    )
    work_side: int = Field(
        512, ge=64, le=2048, description="the crop is resized to this longer side (× 8)"
    )


def crop_box(hole: np.ndarray, context: float) -> tuple[int, int, int, int]:
    """Square-ish box (y0, y1, x0, x1) around the hole, ``context`` × its size, in bounds."""
    h, w = hole.shape
    ys, xs = np.nonzero(hole)
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    side = context * max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    side = max(side, 0.25 * max(h, w))
    sh, sw = min(h, int(side)), min(w, int(side))
    y0 = int(np.clip(cy - sh / 2, 0, h - sh))
    x0 = int(np.clip(cx - sw / 2, 0, w - sw))
    return y0, y0 + sh, x0, x0 + sw


def multiple_of_8(shape: tuple[int, int], side: int) -> tuple[int, int]:
    s = side / max(shape)
    return max(8, int(round(shape[0] * s / 8)) * 8), max(8, int(round(shape[1] * s / 8)) * 8)


class DiffusersInpainter(Tool[InpaintInput, InpaintOutput]):
    """A diffusers inpainting pipeline from a local folder or lake URI."""

    name = "inpaint"
    description = (
        "Remove the masked region (an object) from the image and paint plausible background "
        "with a diffusion model; pixels outside the (slightly grown) mask are kept exactly."
    )
    Params = DiffusersInpaintParams
    backend = "diffusers"

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        pipeline_class: str | None = None,
        cache_dir: str | None = None,
        num_threads: int | None = None,
    ) -> None:
        """``model``: pipeline folder (local path or lake URI, required); ``device``:
        ``"auto"`` follows the GPUs Ray gave the worker (:mod:`liwi.devices`); ``dtype``
        comes from the job config; ``pipeline_class``: a diffusers class name
        (default: ``AutoPipelineForInpainting``); ``cache_dir``: where lake folders go."""
        super().__init__()
        self.model = model
        self.device = device
        self.num_threads = num_threads  # torch CPU threads per worker (None: torch default)
        self.dtype = dtype
        self.pipeline_class = pipeline_class
        self.cache_dir = cache_dir
        self.pipe: Any = None

    def _setup(self) -> None:
        if not self.model:
            raise ToolError("diffusers inpaint needs a model folder (local path or lake URI)")
        import diffusers
        import torch

        set_torch_threads(self.num_threads)
        folder = artifact_dir(self.model, self.cache_dir)
        if not (folder / "model_index.json").is_file():
            raise ToolError(f"{self.model}: no model_index.json (not a diffusers pipeline)")
        cls_name = self.pipeline_class or "AutoPipelineForInpainting"
        cls = getattr(diffusers, cls_name, None)
        if cls is None:
            raise ToolError(f"diffusers has no pipeline class {cls_name!r}")
        dtype = getattr(torch, self.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ToolError(f"unknown torch dtype {self.dtype!r}")
        try:
            pipe = cls.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True)
        except Exception as exc:  # missing components, bad configs, wrong class
            raise ToolError(f"cannot load inpainting pipeline from {self.model}: {exc}") from exc
        pipe.set_progress_bar_config(disable=True)
        self.device = resolve_device(self.device)  # the actor's GPUs, not the driver's
        self.pipe = pipe.to(self.device)

    def run(self, inputs: InpaintInput, params: DiffusersInpaintParams) -> InpaintOutput:
        import torch
        from PIL import Image

        image, hole = image_and_hole(inputs, params.dilate_px)
        y0, y1, x0, x1 = crop_box(hole, params.context)
        crop, crop_hole = image[y0:y1, x0:x1], hole[y0:y1, x0:x1]
        size = multiple_of_8(crop.shape[:2], params.work_side)
        img_in = Image.fromarray((resize(crop, size) * 255 + 0.5).astype(np.uint8))
        mask_small = resize(crop_hole.astype(np.float32), size) > 0.01
        mask_in = Image.fromarray((mask_small * 255).astype(np.uint8))
        generator = torch.Generator(device="cpu").manual_seed(params.seed)
        try:
            result = self.pipe(
                prompt=params.prompt,
                negative_prompt=params.negative_prompt,
                image=img_in,
                mask_image=mask_in,
                height=size[0],
                width=size[1],
                num_inference_steps=params.steps,
                guidance_scale=params.guidance_scale,
                strength=params.strength,
                generator=generator,
                output_type="np",
            )
        except Exception as exc:  # shape/config errors inside the pipeline
            raise ToolError(f"inpainting pipeline failed: {exc}") from exc
        painted = np.asarray(result.images[0], np.float32)
        if painted.shape[:2] != size:
            painted = resize(painted, size)
        painted = np.clip(resize(painted, crop.shape[:2]), 0.0, 1.0)
        out = image.copy()
        out[y0:y1, x0:x1] = np.where(crop_hole[..., None], painted, crop)
        return InpaintOutput(image=out, mask=hole.astype(np.float32))
