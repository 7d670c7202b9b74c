"""The UNet trunk: encoder levels with skips, a bottleneck, decoder levels."""

from __future__ import annotations

import torch
from torch import nn

from liwi.model.blocks import Down, ResBlock, Up
from liwi.model.config import ModelConfig


def level_widths(cfg: ModelConfig) -> list[int]:
    """Channel width of each level, from full resolution down to the bottleneck."""
    widths = [min(cfg.base_channels * 2**i, cfg.max_channels) for i in range(cfg.depth + 1)]
    return [cfg.top_width, *widths[1:]]


class UNet(nn.Module):
    """Maps (B, in_channels, H, W) to (B, top_width, H, W) features; H, W multiples of 2^depth."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        widths = level_widths(cfg)
        self.stem = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        for i in range(cfg.depth):
            self.enc.append(
                nn.Sequential(
                    *[
                        ResBlock(widths[i], widths[i], cfg.groups)
                        for _ in range(cfg.blocks_per_level)
                    ]
                )
            )
            self.down.append(Down(widths[i], widths[i + 1]))
        self.mid = nn.Sequential(
            *[ResBlock(widths[-1], widths[-1], cfg.groups) for _ in range(cfg.blocks_per_level)]
        )
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in reversed(range(cfg.depth)):
            self.up.append(Up(widths[i + 1], widths[i]))
            blocks = [ResBlock(2 * widths[i], widths[i], cfg.groups)]
            blocks += [
                ResBlock(widths[i], widths[i], cfg.groups) for _ in range(cfg.blocks_per_level - 1)
            ]
            self.dec.append(nn.Sequential(*blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        skips = []
        for enc, down in zip(self.enc, self.down, strict=True):
            h = enc(h)
            skips.append(h)
            h = down(h)
        h = self.mid(h)
        for up, dec in zip(self.up, self.dec, strict=True):
            h = up(h)
            h = dec(torch.cat([h, skips.pop()], dim=1))
        return h
