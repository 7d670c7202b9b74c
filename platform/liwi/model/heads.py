"""Output heads: object alpha + colour, background and shadow attenuation.

Every head predicts at the network's resolution. Colour and background are residuals of
the input when the config says so, taken in logit space (``sigmoid(logit(input) + delta)``):
outside the object and its shadow the right answer is "change nothing", which a residual
gets for free, and unlike a clamped ``input + delta`` the output stays in (0, 1) with a
gradient everywhere (a clamped residual let deltas run away and die in training). The predictor
upsamples the *deltas*, so the input's full-resolution detail survives untouched.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from liwi.model.config import ModelConfig

# Inputs are clipped to [LOGIT_EPS, 1 − LOGIT_EPS] before the logit (finite residual base).
LOGIT_EPS = 1e-3


def _logit(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS)
    return torch.log(x) - torch.log1p(-x)


class LayerHeads(nn.Module):
    """Features (B, C, H, W) → alpha, object colour, background, shadow attenuation."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.top_width
        self.cfg = cfg
        self.mix = nn.Conv2d(c + 3, c, 3, padding=1)  # sees the input image again at full res
        self.alpha = nn.Conv2d(c, 1, 1)
        self.color = nn.Conv2d(c, 3, 1)
        self.background = nn.Conv2d(c, 3, 1)
        self.shadow = nn.Conv2d(c, cfg.shadow_channels, 1)
        with torch.no_grad():
            nn.init.zeros_(self.shadow.weight)
            self.shadow.bias.fill_(cfg.shadow_init_bias)  # start with "no shadow"
            for head in (self.color, self.background):  # start with "change nothing"
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    def forward(self, feats: torch.Tensor, image: torch.Tensor) -> dict[str, torch.Tensor]:
        h = F.silu(self.mix(torch.cat([feats, image * 2.0 - 1.0], dim=1)))
        alpha = torch.sigmoid(self.alpha(h))
        color_raw = self.color(h)
        bg_raw = self.background(h)
        base = _logit(image)
        color = torch.sigmoid(base + color_raw if self.cfg.residual_color else color_raw)
        background = torch.sigmoid(base + bg_raw if self.cfg.residual_background else bg_raw)
        shadow = 1.0 - torch.sigmoid(self.shadow(h))  # attenuation S in (0, 1)
        return {
            "alpha": alpha,  # B×1×H×W
            "color": color,  # B×3×H×W decontaminated object colour
            "background": background,  # B×3×H×W clean background
            "shadow": shadow,  # B×1×H×W (grey) or B×3×H×W attenuation, 1 = no shadow
        }
