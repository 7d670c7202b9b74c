"""The network's hyperparameters: one config runs a tiny CPU model or a large GPU one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Prompt channels, in order: soft mask, filled box, point heat map. All-zero = "main object".
PROMPT_CHANNELS = ("mask", "box", "points")


class ModelConfig(BaseModel):
    """Architecture of :class:`liwi.model.network.LayerNet` (stored inside every checkpoint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_channels: int = Field(8, ge=4)  # width of the first UNet level; doubles per level
    depth: int = Field(4, ge=1, le=7)  # number of 2× downsamplings (receptive field ~ 2^depth)
    blocks_per_level: int = Field(1, ge=1)  # residual blocks per level, encoder and decoder
    max_channels: int = Field(64, ge=8)  # cap on the width of the deepest levels
    # width of the full-resolution level and of the heads (None = base_channels): the layers
    # are drawn from these features, so widening them adds capacity where it costs least
    # at depth (liwi.model.grow grows a trained network's top level, keeping its function)
    top_channels: int | None = Field(None, ge=4)
    groups: int = Field(8, ge=1)  # GroupNorm groups (clamped to divide the width)
    resolution: int = Field(80, ge=32)  # long side the image is resized to before the net
    shadow_mode: Literal["grey", "rgb"] = "grey"  # one attenuation channel or three
    residual_background: bool = True  # background = input + predicted delta (else direct)
    residual_color: bool = True  # object colour = input + predicted delta (else direct)
    shadow_init_bias: float = -4.0  # initial shadow logit: S = 1 − sigmoid(x) ≈ 0.98 at start

    @property
    def in_channels(self) -> int:
        return 3 + len(PROMPT_CHANNELS)

    @property
    def top_width(self) -> int:
        """Channels of the full-resolution level (the features the heads read)."""
        return self.top_channels or self.base_channels

    @property
    def shadow_channels(self) -> int:
        return 1 if self.shadow_mode == "grey" else 3

    @property
    def multiple(self) -> int:
        """Spatial sizes the network accepts must be multiples of this."""
        return 2**self.depth


# Named presets: a few-M-param CPU model (shipped) and a large GPU one.
PRESETS: dict[str, dict] = {
    "tiny": {"base_channels": 8, "depth": 2, "resolution": 64},
    "cpu-small": {"base_channels": 8, "depth": 4, "max_channels": 64, "resolution": 80},
    "gpu-large": {
        "base_channels": 64,
        "depth": 5,
        "blocks_per_level": 2,
        "max_channels": 512,
        "resolution": 512,
    },
}


def preset(name: str, **overrides) -> ModelConfig:
    """A :class:`ModelConfig` from a named preset with optional field overrides."""
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; choose from {sorted(PRESETS)}")
    return ModelConfig(**{**PRESETS[name], **overrides})
