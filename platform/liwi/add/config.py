"""The typed config of the ADD job (``liwi decompose`` / ``jobs/decompose.py``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from liwi.add.base import StageResources
from liwi.add.curator import CuratorConfig
from liwi.add.stages import STAGE_ORDER, STAGES
from liwi.agents.base import AgentConfig
from liwi.config import JobConfig


def default_resources() -> dict[str, StageResources]:
    """Every stage's own declared resources, by stage name."""
    return {stage.name: stage.resources for stage in STAGES}


class RayConfig(BaseModel):
    """Where Ray runs; resources are declared here, never detected on the driver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = None  # None: start Ray in-process; "auto" or ray://… to join
    num_cpus: int = Field(2, ge=1)  # logical CPUs of the local in-process Ray
    num_gpus: int = Field(0, ge=0)  # GPUs of the local in-process Ray (declared, not probed)
    object_store_mb: int = Field(512, ge=64)  # local object store size
    progress_bars: bool = False  # Ray Data's own bars (the job shows one of its own)


class DecomposeConfig(JobConfig):
    """Config of ``liwi decompose`` / ``jobs/decompose.py``."""

    input: str = ""  # image lake URI (folder, file://, s3://bucket/prefix)
    output: str = ""  # output URI; tables go to <output>/layers|rejects|errors
    runner: Literal["ray", "loop"] = "ray"  # loop: same stages in this process, no Ray
    # agent: the agent + tools + curator; identity: the photo as a 1-layer stack, always
    # accepted (measures the job's own overhead: listing, I/O, tables; benchmarks only)
    decomposer: Literal["agent", "identity"] = "agent"
    limit: int | None = Field(None, ge=1)  # at most this many listed inputs (listing order)
    max_side: int = Field(1024, ge=32)  # longer side of the layers; bigger photos are downscaled
    max_pixels: int = Field(64_000_000, ge=1)  # declared size above this = decompression bomb
    s3_endpoint: str | None = None  # S3 endpoint (default: AWS_ENDPOINT_URL)
    forward_aws_env: bool = True  # S3 endpoint/region (never credentials) to the workers
    agent: AgentConfig = Field(default_factory=AgentConfig)
    curator: CuratorConfig = Field(default_factory=CuratorConfig)
    verify: dict[str, Any] | None = None  # VLM verify tool ({backend, …}); used if curator.use_vlm
    # the salient segmenter as its own batched model stage before decompose (only with the
    # agent's salient segment tool); off: the agent's tool runs the network per image
    segment_stage: bool = True
    fuse: bool = True  # one pool (sized by stages.decompose) runs the CPU stages but the writer
    stages: dict[str, StageResources] = Field(default_factory=default_resources)
    ray: RayConfig = Field(default_factory=RayConfig)
    recombine: int = Field(0, ge=0)  # new samples made across accepted ones after a run (0 = off)
    recombine_seed: int = 0  # seed of the recombination pairs and placements
    report: bool = True  # write report/report.json and report/report.png
    progress: bool = True  # a tqdm bar on stderr

    def stage_resources(self) -> dict[str, StageResources]:
        """Each stage's resources: its declared default, replaced by the config's entry."""
        resources = default_resources() | dict(self.stages)
        unknown = set(resources) - set(STAGE_ORDER)
        if unknown:
            raise ValueError(f"unknown stages in config: {sorted(unknown)} (known: {STAGE_ORDER})")
        return resources
