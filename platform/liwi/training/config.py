"""Config and result of the Ray Train job (:mod:`liwi.training.distributed`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liwi.config import JobConfig
from liwi.losses import LossConfig
from liwi.tracking import TrackingConfig
from liwi.training.data import DataConfig

MODEL_FILE = "model.pt"  # the liwi-layernet checkpoint inside a Ray checkpoint folder
STATE_FILE = "state.pt"  # optimizer/scheduler/step/data position
STATE_JSON = "state.json"  # the same scalars, human-readable


class ScalingSection(BaseModel):
    """How many workers and what each gets (maps to ``ray.train.ScalingConfig``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_workers: int = Field(2, ge=1)  # DDP processes
    use_gpu: bool = False  # one GPU per worker
    resources_per_worker: dict[str, float] = Field(default_factory=lambda: {"CPU": 1.0})
    torch_threads: int = Field(1, ge=0)  # intra-op threads per worker (0 = torch default)
    data_cpus: float = Field(0.5, gt=0)  # CPUs per Ray Data decode/augment task


class S3Section(BaseModel):
    """S3 endpoint for tables and checkpoints (credentials: the standard AWS chain)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_url: str | None = None  # None: AWS_ENDPOINT_URL or AWS
    region: str | None = None  # None: AWS_REGION / AWS_DEFAULT_REGION


class TrainConfig(JobConfig):
    """``liwi train`` / ``jobs/train.py`` (YAML under ``jobs/configs/``)."""

    tables: list[str] = Field(min_length=1)  # layer table URIs (folders or s3://…)
    train_split: str = "train"  # split used for training
    val_split: str = "val"  # split used for validation (falls back to train if empty)
    name: str = "liwi-train"  # Ray Train run name; the same name + storage resumes
    storage_path: str = "runs/ray"  # where Ray Train keeps checkpoints (folder or s3://…)
    preset: str = "cpu-small"  # model preset (liwi.model.config.PRESETS)
    model: dict[str, Any] = Field(default_factory=dict)  # overrides of the preset's fields
    init_from: str | None = None  # warm start: model URI whose weights (and architecture) start
    loss: LossConfig = Field(default_factory=LossConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    steps: int = Field(2000, ge=1)  # optimizer updates in total
    batch_size: int = Field(8, ge=1)  # samples per worker per micro batch
    grad_accum: int = Field(1, ge=1)  # micro batches per optimizer update
    lr: float = Field(2e-3, gt=0)  # peak AdamW learning rate (for the global batch)
    weight_decay: float = Field(1e-4, ge=0)  # AdamW weight decay
    grad_clip: float = Field(1.0, gt=0)  # max global gradient norm
    warmup: float = Field(0.03, ge=0, lt=1)  # fraction of steps with a linear LR warm-up
    lr_floor: float = Field(0.05, ge=0, le=1)  # final LR as a fraction of the peak (cosine)
    log_every: int = Field(10, ge=1)  # steps between training-metric logs
    val_every: int = Field(200, ge=1)  # steps between validations
    val_samples: int = Field(64, ge=1)  # validation samples (fixed draws)
    checkpoint_every: int = Field(200, ge=1)  # steps between checkpoints
    keep_checkpoints: int = Field(2, ge=1)  # newest checkpoints kept in storage
    grid_samples: int = Field(4, ge=1)  # rows of the sample-decomposition grid
    shuffle_buffer: int = Field(64, ge=0)  # local shuffle buffer (samples) per worker
    seed: int = 0  # model init, shuffling, augmentation draws
    max_failures: int = Field(0, ge=-1)  # worker-group restarts after a crash (-1 = forever)
    scaling: ScalingSection = Field(default_factory=ScalingSection)
    s3: S3Section = Field(default_factory=S3Section)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    ray_address: str | None = None  # None: connect to RAY_ADDRESS or start a local Ray
    ray_num_cpus: int | None = None  # logical CPUs of a local Ray (None = cores)
    # Ray Data's own progress bars for the train/val pipelines. Off by default: in a job log
    # (no terminal) every repaint is a new line, ~1,800 of them for a 2-step run
    progress_bars: bool = False
    # testing only: the last rank's process dies (os._exit) once when it reaches this step,
    # to prove FailureConfig restarts from the latest checkpoint (local storage only)
    inject_failure_at_step: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _crop_fits(self) -> TrainConfig:
        from liwi.model import preset

        if self.init_from is not None:  # the checkpoint's architecture: checked when loaded
            return self
        cfg = preset(self.preset, **self.model)
        if self.data.crop % cfg.multiple:
            raise ValueError(f"data.crop {self.data.crop} must be a multiple of {cfg.multiple}")
        return self


@dataclass
class TrainResult:
    """What a finished training run left behind."""

    checkpoint_dir: str  # the Ray checkpoint folder (local or s3 path)
    model_path: Path  # local copy of the final liwi checkpoint
    step: int
    metrics: dict[str, Any]
    mlflow_run_id: str | None
    model_uri: str | None  # models:/name/version if registered
    alias_uri: str | None  # models:/name@candidate if registered
