"""Typed arguments of the Serve application (the ``args:`` block of ``serve/config.yaml``)."""

from __future__ import annotations

import os

from pydantic import Field, model_validator

from liwi.config import JobConfig
from liwi.imageio import WORK_PIXELS
from liwi.predictor import DEFAULT_MAX_LAYERS
from liwi.weights import DEFAULT_WEIGHT

MiB = 1024 * 1024


class ServeAppArgs(JobConfig):
    """What the ingress and model deployments need; unknown keys are errors."""

    # Model to load: None = the shipped default, a checkpoint path, or models:/name@alias.
    model_uri: str | None = None
    # Salient prior of the model replicas (liwi.weights): a registered weight name, a lake
    # URI or a file; "none" (or null) = the network alone, and `method: prior` is refused.
    prior: str | None = Field(DEFAULT_WEIGHT, min_length=1)
    # Device for inference: None lets the predictor choose (CUDA when the replica has a GPU).
    device: str | None = None
    # API key; None disables auth unless the env variable named below is set on the replica.
    api_key: str | None = None
    api_key_env: str = "LIWI_API_KEY"
    # Largest request body accepted (bytes); larger → 413 before the body is read.
    max_body_bytes: int = Field(32 * MiB, ge=1024)
    # Largest image accepted (width × height); larger → 413 before pixels are decoded.
    max_pixels: int = Field(16_000_000, ge=64)
    # Working size: larger photos are downscaled to this many pixels while decoding (8-bit,
    # JPEG draft), so one request's float maps stay bounded (≈ 170 MB per MP in the model).
    work_pixels: int = Field(WORK_PIXELS, ge=64)
    # Decodes running at once in one ingress replica; more requests wait for a slot, so a
    # burst of heavy uploads cannot take every CPU and all the memory.
    max_concurrent_decodes: int = Field(2, ge=1, le=64)
    # A photo with more working pixels than this is "large": large photos reach the model at
    # most max_concurrent_large at a time per ingress replica, so a burst of them cannot
    # fill the model replica's queue ahead of normal requests.
    large_pixels: int = Field(1_000_000, ge=64)
    max_concurrent_large: int = Field(1, ge=1, le=64)
    # Whole request body must arrive within this many seconds (slow clients) → 408.
    body_timeout_s: float = Field(60.0, gt=0)
    # Upper bound a client may ask for in max_layers (background + objects).
    max_layers_limit: int = Field(8, ge=2, le=64)
    # max_layers used when the request does not say.
    default_max_layers: int = Field(DEFAULT_MAX_LAYERS, ge=1)
    # End-to-end budget for one decomposition inside the ingress; exceeded → 504.
    request_timeout_s: float = Field(60.0, gt=0)
    # Dynamic batching of the model deployment (1 = batching off).
    max_batch_size: int = Field(4, ge=1, le=256)
    # How long the first request of a batch waits for others to arrive (seconds). Small:
    # under load batches fill anyway while the previous batch runs; idle, it is pure latency.
    batch_wait_timeout_s: float = Field(0.002, ge=0)
    # Retry-After (seconds) sent with 503 when the queue is full.
    retry_after_s: int = Field(1, ge=0)
    # How long /readyz waits for the model deployment to answer.
    readiness_timeout_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _default_layers_within_limit(self) -> ServeAppArgs:
        if self.default_max_layers > self.max_layers_limit:
            raise ValueError(
                f"default_max_layers ({self.default_max_layers}) exceeds "
                f"max_layers_limit ({self.max_layers_limit})"
            )
        return self

    def resolved_prior(self) -> str | None:
        """The prior weight reference, or None for ``prior: none``."""
        if self.prior is None or self.prior.strip().lower() == "none":
            return None
        return self.prior

    def resolved_api_key(self) -> str | None:
        """The key to check: ``api_key`` or the environment variable; None = no auth."""
        key = self.api_key or os.environ.get(self.api_key_env) or None
        return key
