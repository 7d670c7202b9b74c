"""LayerNet: image + prompt channels → one (object, shadow, background) decomposition."""

from __future__ import annotations

import torch
from torch import nn

from liwi.model.config import ModelConfig
from liwi.model.heads import LayerHeads
from liwi.model.prompts import network_inputs
from liwi.model.unet import UNet


class LayerNet(nn.Module):
    """Peels the top object (or the prompted one) off an image.

    ``forward(image, prompt)``: image B×3×H×W in [0, 1], prompt B×3×H×W (mask, box,
    points; zeros = the main foreground object). H and W must be multiples of
    ``config.multiple``. Returns ``alpha``, ``color``, ``background`` and ``shadow``
    (attenuation) maps; see :class:`~liwi.model.heads.LayerHeads`.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = UNet(config)
        self.heads = LayerHeads(config)

    def forward(
        self, image: torch.Tensor, prompt: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        prompt = network_inputs(image, prompt)
        h, w = image.shape[2:]
        m = self.config.multiple
        if h % m or w % m:
            raise ValueError(f"image size {h}×{w} is not a multiple of {m} (2^depth); pad it")
        x = torch.cat([image * 2.0 - 1.0, prompt], dim=1)
        feats = self.trunk(x)
        out = self.heads(feats.float(), image.float())
        return out

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
