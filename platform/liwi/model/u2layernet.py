"""U2LayerNet (model v2): the LiWi decomposition network on a pretrained U²-Net trunk.

Read top to bottom:

1. :class:`ConvReLU` and :class:`RSU` — the residual U-blocks of U²-Net (Qin et al.,
   2020), written here from the paper's description. Batch norm is folded into the
   convolutions, as in the ONNX files the weights come from (:mod:`liwi.weights`).
2. :class:`U2Trunk` — six encoder stages, five decoder stages, six side outputs and
   their fused map. Its weights are the pretrained salient-object weights
   (:func:`load_trunk_weights` reads them out of the ONNX graph in execution order).
3. :class:`LiWiHeads` — the LiWi part: the image, the trunk's seven saliency maps and
   the prompt channels go in; alpha, decontaminated colour and the shadow
   attenuation come out. Every path that could change the pretrained behaviour starts at
   zero: the prompt channels' weights, the alpha and colour residuals, the shadow logit
   (bias −4 ≈ no shadow). At step 0 the alpha *is* the trunk's contrast-stretched
   saliency, whatever the prompt.
4. :class:`U2LayerNet` — trunk + heads with the interface of
   :class:`~liwi.model.network.LayerNet` (``forward(image, prompt)`` → alpha, color,
   background, shadow), so the predictor, the losses and the training step take either.
   The background is the input with the predicted shadow lifted (``I / S``); what lies
   under the object is filled by the predictor's inpainter.

The trunk is frozen when ``config.train_trunk`` is false (CPU fine-tuning: one forward per
image, no backward through it); on a GPU the whole network trains.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

# -- 1. blocks ------------------------------------------------------------------------


class ConvReLU(nn.Module):
    """3×3 convolution (batch norm folded into its bias) + ReLU, with a dilation."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


def _up_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to ``ref``'s spatial size (half-pixel centres)."""
    if x.shape[2:] == ref.shape[2:]:
        return x
    return F.interpolate(x, size=ref.shape[2:], mode="bilinear", align_corners=False)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


class RSU(nn.Module):
    """Residual U-block of height ``height``: a small U-Net inside one stage.

    ``flat`` (the "F" variant of the deepest stages) replaces pooling by growing dilation.
    Output = input projection + the inner U-Net's output (both ``cout`` channels).
    """

    def __init__(self, height: int, cin: int, mid: int, cout: int, flat: bool = False) -> None:
        super().__init__()
        self.flat = flat
        dil = [1, 2, 4, 8] if flat else [1] * (height - 1) + [2]
        self.conv_in = ConvReLU(cin, cout)
        self.enc = nn.ModuleList(
            [ConvReLU(cout if i == 0 else mid, mid, dil[i]) for i in range(height)]
        )
        self.dec = nn.ModuleList(
            [
                ConvReLU(2 * mid, cout if i == 0 else mid, dil[i])
                for i in reversed(range(height - 1))
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xin = self.conv_in(x)
        skips = []
        h = xin
        last = len(self.enc) - 1
        for i, conv in enumerate(self.enc):
            h = conv(h)
            if i < last:
                skips.append(h)
                if not self.flat and i < last - 1:
                    h = _pool(h)
        for conv in self.dec:
            skip = skips.pop()
            h = conv(torch.cat([_up_like(h, skip), skip], dim=1))
        return h + xin


# -- 2. trunk -------------------------------------------------------------------------

# Stage = (height, in, mid, out, flat). Encoder stages 1-6, decoder stages 5d-1d.
TRUNKS: dict[str, dict[str, list[tuple[int, int, int, int, bool]]]] = {
    "u2netp": {  # 1.13 M parameters, weights 4.6 MB (Apache-2.0)
        "encoder": [(7, 3, 16, 64, False), (6, 64, 16, 64, False), (5, 64, 16, 64, False)]
        + [(4, 64, 16, 64, False), (4, 64, 16, 64, True), (4, 64, 16, 64, True)],
        "decoder": [(4, 128, 16, 64, True), (4, 128, 16, 64, False), (5, 128, 16, 64, False)]
        + [(6, 128, 16, 64, False), (7, 128, 16, 64, False)],
    },
    "u2net": {  # 44 M parameters, weights 176 MB (Apache-2.0)
        "encoder": [(7, 3, 32, 64, False), (6, 64, 32, 128, False), (5, 128, 64, 256, False)]
        + [(4, 256, 128, 512, False), (4, 512, 256, 512, True), (4, 512, 256, 512, True)],
        "decoder": [(4, 1024, 256, 512, True), (4, 1024, 128, 256, False)]
        + [(5, 512, 64, 128, False), (6, 256, 32, 64, False), (7, 128, 16, 64, False)],
    },
}

# The trunk's input normalisation (ImageNet statistics, as its weights were trained with).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class U2Trunk(nn.Module):
    """U²-Net: image → B×7×H×W saliency probabilities (fused map, then sides 1-6).

    The same seven maps, in the same order, as the ONNX graph's outputs, so the
    predictor may run the trunk on onnxruntime (faster on a CPU) and the heads in torch.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        spec = TRUNKS[name]
        self.encoder = nn.ModuleList([RSU(*s) for s in spec["encoder"]])
        self.decoder = nn.ModuleList([RSU(*s) for s in spec["decoder"]])
        side_in = [spec["decoder"][-1 - i][3] for i in range(5)] + [spec["encoder"][-1][3]]
        self.sides = nn.ModuleList([nn.Conv2d(c, 1, 3, padding=1) for c in side_in])
        self.fuse = nn.Conv2d(6, 1, 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image - self.mean) / self.std
        enc = []
        for i, stage in enumerate(self.encoder):
            x = stage(x if i == 0 else _pool(x))
            enc.append(x)
        dec = [enc[-1]]  # the deepest stage's output is the first "decoded" map
        h = enc[-1]
        for stage, skip in zip(self.decoder, reversed(enc[:-1]), strict=True):
            h = stage(torch.cat([_up_like(h, skip), skip], dim=1))
            dec.append(h)
        full = dec[-1]  # stage 1d: full resolution
        # side i reads decoder stage (i+1)d; the last side reads encoder stage 6
        maps = [full, *reversed(dec[1:-1]), dec[0]]
        sides = [_up_like(side(m), full) for side, m in zip(self.sides, maps, strict=True)]
        fused = self.fuse(torch.cat(sides, dim=1))
        return torch.sigmoid(torch.cat([fused, *sides], dim=1))


def _paired_convs(trunk: U2Trunk, graph, source: str) -> list[tuple[nn.Conv2d, object]]:
    """The trunk's convolutions paired with the ONNX graph's Conv nodes, in execution order.

    The order of the graph's Conv nodes is the order its exporter ran them; a forward pass
    with hooks gives ours. Shapes are checked one by one, so a mismatched graph is an error
    naming the first convolution that does not fit.
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    onnx_convs = [n for n in graph.node if n.op_type == "Conv"]
    order: list[nn.Conv2d] = []
    hooks = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in trunk.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        trunk(torch.zeros(1, 3, 64, 64, device=trunk.mean.device))
    for h in hooks:
        h.remove()
    if len(order) != len(onnx_convs):
        raise ValueError(f"{source}: {len(onnx_convs)} convolutions, the trunk has {len(order)}")
    for i, (mod, node) in enumerate(zip(order, onnx_convs, strict=True)):
        shape = tuple(numpy_helper.to_array(inits[node.input[1]]).shape)
        if shape != tuple(mod.weight.shape):
            raise ValueError(
                f"{source}: convolution {i} ({node.name}) is {shape}, "
                f"the trunk expects {tuple(mod.weight.shape)}"
            )
    return [
        (mod, (inits[node.input[1]], inits[node.input[2]]))
        for mod, node in zip(order, onnx_convs, strict=True)
    ]


def load_trunk_weights(trunk: U2Trunk, onnx_path: str) -> None:
    """Copy the ONNX graph's convolution weights into ``trunk``, in execution order."""
    import onnx
    from onnx import numpy_helper

    pairs = _paired_convs(trunk, onnx.load(onnx_path).graph, onnx_path)
    with torch.no_grad():
        for mod, (w, b) in pairs:
            mod.weight.copy_(torch.from_numpy(numpy_helper.to_array(w).copy()))
            mod.bias.copy_(torch.from_numpy(numpy_helper.to_array(b).copy()))


def trunk_into_onnx(trunk: U2Trunk, model) -> None:
    """Write ``trunk``'s convolution weights into the ONNX ``model`` (a ``ModelProto`` of
    the graph the trunk was loaded from), in place: the inverse of
    :func:`load_trunk_weights`, so a fine-tuned trunk runs on onnxruntime."""
    from onnx import numpy_helper

    for mod, (w, b) in _paired_convs(trunk, model.graph, "ONNX graph"):
        for proto, value in ((w, mod.weight), (b, mod.bias)):
            arr = value.detach().float().cpu().numpy()  # float32, as the graph's
            proto.CopyFrom(numpy_helper.from_array(arr, proto.name))


# -- 3. LiWi heads --------------------------------------------------------------------

# The trunk's saliency is contrast-stretched before it is the alpha's starting point:
# (s − STRETCH_LOW) / STRETCH_SPAN, clipped (lifts U²-Netp 0.898 → 0.911 soft IoU).
STRETCH_LOW = 0.2
STRETCH_SPAN = 0.6
# Probabilities are clipped to [EPS, 1 − EPS] before a logit (finite residual base).
EPS = 1e-3
# The shadow lifts the background as I / max(S, MIN_ATTENUATION) (no division blow-up).
MIN_ATTENUATION = 0.05


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(EPS, 1.0 - EPS)
    return torch.log(p) - torch.log1p(-p)


def stretched_saliency(fused: torch.Tensor) -> torch.Tensor:
    """The trunk's fused saliency (B×1×H×W probability), min-max normalised per image (as
    the prior's pre-processing does) and contrast-stretched, in [0, 1]."""
    s = fused
    lo = s.amin(dim=(1, 2, 3), keepdim=True)
    hi = s.amax(dim=(1, 2, 3), keepdim=True)
    s = (s - lo) / (hi - lo).clamp_min(EPS)
    return ((s - STRETCH_LOW) / STRETCH_SPAN).clamp(0.0, 1.0)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ConvBlock(nn.Module):
    """Two 3×3 conv + GroupNorm + SiLU layers (the heads' context network)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            _norm(cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            _norm(cout),
            nn.SiLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# The trunk's outputs the heads read: the fused map and its six side maps.
N_SALIENCY = 7


class LiWiHeads(nn.Module):
    """Image + the trunk's saliency maps + prompt → alpha, colour, shadow.

    A small U-Net (``widths``, one level per 2× downsampling) gives the heads the context a
    cast shadow needs: it lies beside the object, often farther than the trunk's last
    stage looks at full resolution.
    """

    def __init__(self, widths: tuple[int, ...], n_prompt: int) -> None:
        super().__init__()
        w0 = widths[0]
        self.stem = nn.Conv2d(3 + N_SALIENCY, w0, 3, padding=1)
        self.prompt_in = nn.Conv2d(n_prompt, w0, 3, padding=1)
        self.down = nn.ModuleList(
            [ConvBlock(widths[i], widths[i + 1]) for i in range(len(widths) - 1)]
        )
        self.up = nn.ModuleList(
            [ConvBlock(widths[i + 1] + widths[i], widths[i]) for i in range(len(widths) - 1)]
        )
        self.alpha = nn.Conv2d(w0, 1, 3, padding=1)
        self.color = nn.Conv2d(w0, 3, 3, padding=1)
        self.shadow = nn.Conv2d(w0, 1, 3, padding=1)
        with torch.no_grad():  # every change to the pretrained behaviour starts at zero
            for head in (self.prompt_in, self.alpha, self.color, self.shadow):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
            self.shadow.bias.fill_(-4.0)  # S = 1 − sigmoid(−4) ≈ 0.98: no shadow

    def forward(
        self, image: torch.Tensor, saliency: torch.Tensor, prompt: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        # float32 even under bf16 autocast: a trunk trained on a GPU returns bf16, where
        # 1 − EPS rounds to 1 and the alpha's logit base would be infinite
        saliency = saliency.float()
        x = torch.cat([image * 2.0 - 1.0, saliency * 2.0 - 1.0], 1)
        h = F.silu(self.stem(x) + self.prompt_in(prompt))
        skips = [h]
        for block in self.down:
            h = block(F.avg_pool2d(h, 2, ceil_mode=True))
            skips.append(h)
        skips.pop()
        for block in reversed(self.up):
            skip = skips.pop()
            h = block(torch.cat([_up_like(h, skip), skip], 1))
        alpha = torch.sigmoid(_logit(stretched_saliency(saliency[:, :1])) + self.alpha(h))
        color = torch.sigmoid(_logit(image) + self.color(h))
        shadow = 1.0 - torch.sigmoid(self.shadow(h))
        background = (image / shadow.clamp_min(MIN_ATTENUATION)).clamp(0.0, 1.0)
        return {"alpha": alpha, "color": color, "background": background, "shadow": shadow}


# -- 4. the network -------------------------------------------------------------------


class U2LayerNetConfig(BaseModel):
    """Architecture of :class:`U2LayerNet` (stored inside every checkpoint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Literal["u2layernet"] = "u2layernet"
    trunk: Literal["u2netp", "u2net"] = "u2netp"  # pretrained trunk (liwi.weights name)
    head_widths: tuple[int, ...] = (16, 32, 48, 64, 64)  # heads' U-Net widths, full res first
    resolution: int = Field(320, ge=64)  # long side the image is resized to (trunk's size)
    train_trunk: bool = False  # False: trunk frozen (CPU fine-tuning); True: all weights train
    shadow_mode: Literal["grey"] = "grey"  # one attenuation channel (the output contract's)

    @property
    def multiple(self) -> int:
        """Spatial sizes must be multiples of this (five 2× poolings in the trunk)."""
        return 32

    @property
    def in_channels(self) -> int:
        from liwi.model.config import PROMPT_CHANNELS

        return 3 + len(PROMPT_CHANNELS)


class U2LayerNet(nn.Module):
    """Peels the prompted (or most salient) object off an image; LayerNet's interface."""

    def __init__(self, config: U2LayerNetConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = U2Trunk(config.trunk)
        self.heads = LiWiHeads(config.head_widths, config.in_channels - 3)
        self.trunk.requires_grad_(config.train_trunk)

    def forward(
        self,
        image: torch.Tensor,
        prompt: torch.Tensor | None = None,
        saliency: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``saliency``: the trunk's B×7×H×W output when it was computed elsewhere
        (onnxruntime, or a training cache); None runs the trunk here."""
        from liwi.model.prompts import network_inputs

        prompt = network_inputs(image, prompt)
        if saliency is None:
            with torch.set_grad_enabled(self.config.train_trunk and torch.is_grad_enabled()):
                saliency = self.trunk(image)
        return self.heads(image, saliency, prompt)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def train(self, mode: bool = True) -> U2LayerNet:
        super().train(mode)
        if not self.config.train_trunk:
            self.trunk.eval()  # a frozen trunk keeps inference behaviour while heads train
        return self


def pretrained(config: U2LayerNetConfig | None = None) -> U2LayerNet:
    """A :class:`U2LayerNet` whose trunk holds the registered pretrained weights."""
    from liwi.weights import resolve

    config = config or U2LayerNetConfig()
    model = U2LayerNet(config)
    load_trunk_weights(model.trunk, str(resolve(config.trunk)))
    return model
