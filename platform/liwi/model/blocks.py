"""UNet building blocks: residual conv blocks, down- and up-sampling."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Fewest channels per normalisation group: one-channel groups on the small deep feature
# maps (5×5 at 80 px) have near-zero variance and blew up gradients in training.
MIN_GROUP_CHANNELS = 4


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with ≤ ``groups`` groups of ≥ 4 channels, the count dividing ``channels``."""
    g = max(1, min(groups, channels // MIN_GROUP_CHANNELS))
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels)


class ResBlock(nn.Module):
    """Two 3×3 convs with GroupNorm + SiLU and a (projected) identity shortcut."""

    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = group_norm(c_out, groups)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Down(nn.Module):
    """Halve the resolution with a strided 3×3 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Up(nn.Module):
    """Double the resolution (bilinear) and project with a 3×3 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.conv(x)
