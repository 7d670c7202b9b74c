"""The ``segment`` model stage: the salient segmenter over a whole batch of images at once.

It runs before ``decompose`` and writes ``saliency``: the prior's fused 320×320 map of each
decoded photo (:meth:`liwi.priors.salient.SalientPrior.fused_maps`). The agent's salient
segmenter then uses that map for its first pass on the photo instead of running the
network per image (:class:`liwi.tools.segment.SegmentInput` ``saliency``); passes on other
images (e.g. peeling an inpainted background) still run their own. ``decompose`` drops the
column once the agent has it.

On a GPU (the actor was given ``num_gpus``, a fraction is enough for U²-Netp) the batch is
stacked and run through our torch trunk in one forward pass; on a CPU onnxruntime runs one
image after the other (the pinned ONNX graph has a fixed batch of 1), which gives exactly
the numbers the tool would compute itself. The torch trunk matches ONNX within 1e-4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from liwi.add.base import (
    PENDING,
    Row,
    RunContext,
    Stage,
    StageResources,
    limit_threads,
    mark_error,
)

if TYPE_CHECKING:
    from liwi.add.config import DecomposeConfig

NO_MAP = np.zeros((0, 0), np.float32)  # the column's value on rows the stage did not handle


class Segment(Stage):
    """Precompute the salient prior's map of each pending photo, batched across images."""

    name = "segment"
    # CPU default: onnxruntime on one thread, a quarter CPU reserved (on a CPU it mostly
    # runs fused beside decompose); GPU configs give it a GPU fraction and a CPU to feed it
    resources = StageResources(batch_size=16, min_actors=1, max_actors=4, num_cpus=0.25)
    reads = ("image",)
    writes = ("saliency",)
    handles = (PENDING,)

    def __init__(
        self,
        weight: str | None = None,
        device: str = "auto",
        backend: str = "auto",
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self.weight = weight  # the segment tool's weight (None: the default U²-Netp)
        self.device = device  # "auto": cuda when Ray gave this actor a GPU, else cpu
        self.backend = backend  # auto | torch (one batched pass) | onnx (per image)
        self.threads = threads  # CPU threads per actor; None = library defaults
        self.prior: Any = None

    @classmethod
    def enabled(cls, config: DecomposeConfig) -> bool:
        """On when asked for and the agent's segmenter is the salient prior it feeds."""
        tool = config.agent.tools.get("segment")
        return (
            config.segment_stage
            and config.decomposer == "agent"
            and tool is not None
            and tool.backend == "salient"
        )

    @classmethod
    def options(cls, config: DecomposeConfig, run: RunContext) -> dict[str, Any]:
        tool = config.agent.tools["segment"]
        return {
            "weight": tool.config.get("weight"),
            "threads": max(1, round(config.stage_resources()[cls.name].num_cpus))
            if config.runner == "ray"
            else None,
        }

    def _setup(self) -> None:
        from liwi.priors.salient import SalientPrior

        limit_threads(self.threads)
        self.prior = SalientPrior(self.weight, device=self.device, threads=self.threads)

    def process_rows(self, rows: list[Row]) -> list[Row]:
        """Preprocess each pending row (a bad image is that row's error), then one network
        call for all of them (its failure is every one of those rows' error)."""
        from liwi.imageio import to_float

        todo: list[tuple[int, np.ndarray]] = []
        for i, row in enumerate(rows):
            if not self.handled(row):
                continue
            try:
                image = to_float(row["image"])
                if image.ndim != 3 or image.shape[2] != 3 or not image.size:
                    raise ValueError(f"expected an H×W×3 image, got {image.shape}")
                todo.append((i, image))
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop the job
                rows[i] = mark_error(row, self.name, exc)
        if not todo:
            return rows
        try:
            maps = self.prior.fused_maps([image for _, image in todo], self.backend)
        except Exception as exc:  # noqa: BLE001 - reported per row, the job goes on
            for i, _ in todo:
                rows[i] = mark_error(rows[i], self.name, exc)
            return rows
        for (i, _), m in zip(todo, maps, strict=True):
            rows[i]["saliency"] = np.ascontiguousarray(m, dtype=np.float32)
        return rows

    def finish_row(self, row: Row) -> Row:
        row.setdefault("saliency", NO_MAP)
        return row
