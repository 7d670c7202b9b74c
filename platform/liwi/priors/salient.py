"""A pretrained salient-object network (U²-Net family) as a soft foreground prior.

``SalientPrior(weight).alpha(image)`` → H×W float32 alpha at the image's own resolution:

1. resize the RGB image to 320² (bilinear) and normalise with ImageNet mean/std, the way
   the U²-Net weights were trained;
2. run the network (onnxruntime on CPU; the same ONNX graph converted to torch with
   ``onnx2torch`` when a CUDA device is asked for) and take its fused side output d0.
   :meth:`SalientPrior.batch_maps` runs many images at once: our torch trunk
   (:class:`~liwi.model.u2layernet.U2Trunk`) on a stacked batch, or onnxruntime one
   image at a time (the pinned ONNX graph has a fixed batch of 1). A fine-tuned weight
   that is unsure of a photo asks the weight it was tuned from (the second opinion,
   :meth:`SalientPrior.maps_with_source`);
3. min-max normalise that map, resize it to the input size (bicubic when enlarging)
   and stretch its contrast there (``(a − low) / (high − low)``, clipped): stretched at
   the output's resolution, the edge is steeper than a stretched 320² map enlarged
   (union soft IoU +0.001 / +0.002 on real cut-outs at 640 / 1280 px, identical at
   320; ``benchmarks/RESULTS.md``, ninth session). No edge refinement: a
   guided filter steered by the photo was measured to lower the alpha's soft IoU against
   real cut-outs at 320, 640 and 1280 px, with either prior (``benchmarks/RESULTS.md``,
   sixth session), so it was removed.

Weights come from :mod:`liwi.weights` (a registered name, a lake URI or a file); nothing
is downloaded here.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from liwi.devices import resolve_device
from liwi.priors.refine import resize_map

log = logging.getLogger(__name__)

# Side the U²-Net family was trained at; inputs are resized to INPUT_SIZE².
INPUT_SIZE = 320
# ImageNet statistics used when the U²-Net weights were trained.
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
# A map whose peak probability is below MIN_PEAK holds nothing salient: min-max normalising
# it would blow its noise up into an object. A flat photo peaks at 0.001–0.06 (black is
# the highest); of the 153 held-out B and C rows, 5 % peak below 0.80, the lowest at 0.009.
MIN_PEAK = 0.1
# A photo whose pixels' standard deviation is below FLAT_STD (1/255: under one 8-bit step)
# shows nothing salient, whatever the network says: the fine-tuned u2netp-liwi peaks at
# 0.98 on a black frame and 0.37 on a grey one (U²-Netp at 0.06 and 0.001), which MIN_PEAK
# alone let through as an object.
FLAT_STD = 1.0 / 255.0
# The second opinion (``WeightSpec.base``): a fine-tuned weight that is unsure of a photo
# asks the pretrained weight it was tuned from, and the base's map is kept when the base
# is sure of it and sees more. On close-up crops of the sample cat u2netp-liwi keeps only
# the eyes (undecided/foreground 2.2-8.0, alpha mean 0.06-0.30) where U²-Netp keeps the
# whole cat (0.23-0.32, 0.65-0.68); on 112 crops of 16 photos it switched on those four
# only, and on the held-out B, C, E test rows never (benchmarks/RESULTS.md, 17th session).
UNSURE_BAND = (0.1, 0.9)  # fused-map probabilities the network has not decided
UNSURE_RATIO = 2.0  # a map is unsure when its undecided pixels outnumber its foreground 2:1
SURE_RATIO = 1.0  # the base's map counts when its undecided pixels are fewer than its fg


def is_flat(image: np.ndarray) -> bool:
    """Whether a photo has no visible structure (every channel's std over the pixels below
    FLAT_STD): nothing to peel. Per channel, so that one uniform colour (its channels
    differ from each other, not across the frame) is flat too."""
    arr = np.asarray(image, np.float32)
    planes = [arr[..., c] for c in range(arr.shape[2])] if arr.ndim == 3 else [arr]
    # plane by plane: a std over axis 0 of an N×3 view walks 3-long rows (13 ms at 512²)
    return max(float(p.std()) for p in planes) < FLAT_STD


# Contrast stretch of the min-max normalised map: values ≤ LOW → 0, ≥ HIGH → 1. Lifts
# soft-IoU of U²-Netp 0.898 → 0.911 on held-out rendered scenes (shared notes).
STRETCH_LOW, STRETCH_HIGH = 0.2, 0.8


def _normalised(chw: np.ndarray) -> np.ndarray:
    """3×H×W image in [0, 1] → the network's input: ImageNet-normalised float32."""
    return ((chw - MEAN[:, None, None]) / STD[:, None, None]).astype(np.float32)


def _any_side(path: str) -> bytes:
    """The ONNX graph with its input's and outputs' spatial sizes left open (the pinned
    files declare 320×320; the convolutions and resizes take any multiple of 32)."""
    import onnx

    model = onnx.load(path)
    for value in [*model.graph.input, *model.graph.output]:
        for i, dim in enumerate(value.type.tensor_type.shape.dim[2:]):
            dim.ClearField("dim_value")
            dim.dim_param = ("height", "width")[i]
    return model.SerializeToString()


def unsure_ratio(fused: np.ndarray) -> float:
    """Undecided pixels (inside ``UNSURE_BAND``) per foreground pixel (> 0.5) of a fused
    map of probabilities; a crisp map scores near 0, a map of scattered doubt far above 1."""
    lo, hi = UNSURE_BAND
    undecided = float(np.count_nonzero((fused > lo) & (fused < hi)))
    return undecided / max(float(np.count_nonzero(fused > 0.5)), 1e-3 * fused.size)


def asks_base(fused: np.ndarray, image: np.ndarray) -> bool:
    """Whether a weight unsure of ``image`` (its fused map's ``unsure_ratio`` above
    ``UNSURE_RATIO``) asks its base; never on a flat photo (nothing there to find)."""
    return unsure_ratio(fused) > UNSURE_RATIO and not is_flat(image)


def prefer_base(own: np.ndarray, base: np.ndarray) -> bool:
    """Whether the base weight's fused map replaces an unsure one's: the base is sure
    (``SURE_RATIO``) and its foreground is larger."""
    larger = np.count_nonzero(base > 0.5) > np.count_nonzero(own > 0.5)
    return bool(larger and unsure_ratio(base) < SURE_RATIO)


class SalientPrior:
    """A U²-Net family network that maps a photo to a soft salient-object alpha."""

    def __init__(
        self,
        weight: str | None = None,
        device: str | None = None,
        threads: int | None = None,
        trunk: Any = None,
    ) -> None:
        """``trunk``: an already-built torch :class:`~liwi.model.u2layernet.U2Trunk` holding
        ``weight`` (e.g. one loaded from int8 parts or being fine-tuned, on any device): the
        torch backend runs it as it is, and the weight's ONNX file is then not needed."""
        from liwi import weights

        self.weight = weight or weights.DEFAULT_WEIGHT
        self.path = weights.resolve(self.weight) if trunk is None else None
        self.licence = weights.licence_of(self.weight)
        # None: cpu (callers that pass nothing keep ONNX on the CPU); "auto": the GPUs Ray
        # gave this worker (liwi.devices); anything else as given; a given trunk's own device
        if trunk is not None:
            self.device = str(next(trunk.parameters()).device)
        else:
            self.device = "cpu" if device is None else resolve_device(device)
        self._threads = threads
        # the weight asked when this one is unsure (second opinion); a given trunk has none
        self.base = weights.base_of(self.weight) if trunk is None else None
        self._base_prior: SalientPrior | None = None
        self._session: Any = None
        self._torch_net: Any = None
        self._torch_trunk: Any = trunk

    # -- backends ---------------------------------------------------------------------
    def _run_onnx(self, x: np.ndarray) -> np.ndarray:
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            n = self._threads or int(os.environ.get("LIWI_PRIOR_THREADS", "0"))
            if n > 0:
                opts.intra_op_num_threads = n
                opts.inter_op_num_threads = 1
            # the pool's threads stop spinning when a run returns: left spinning they take
            # the cores from the torch network that runs next (its 2 views: 70-80 ms beside
            # 95-127 ms after a spinning run; the whole call's time moved within noise) and
            # an idle serving replica's (benchmarks/RESULTS.md, 15th session)
            opts.add_session_config_entry("session.force_spinning_stop", "1")
            self._session = ort.InferenceSession(
                _any_side(str(self.path)), sess_options=opts, providers=["CPUExecutionProvider"]
            )
            self._input = self._session.get_inputs()[0].name
        return np.concatenate(self._session.run(None, {self._input: x}), axis=1)

    def torch_module(self):
        """The ONNX graph as a trainable ``torch.nn.Module`` (onnx2torch; outputs d0…d6)."""
        if self._torch_net is None:
            import onnx
            from onnx2torch import convert

            self._torch_net = convert(onnx.load(str(self.path))).eval()
        return self._torch_net

    def _run_torch(self, x: np.ndarray) -> np.ndarray:
        import torch

        net = self.torch_module().to(self.device)
        with torch.no_grad():
            out = net(torch.from_numpy(x).to(self.device))
        maps = list(out) if isinstance(out, list | tuple) else [out]
        return torch.cat([m.float() for m in maps], dim=1).cpu().numpy()

    def _trunk(self) -> Any:
        """Our torch U²-Net trunk holding this weight (batched; no onnx2torch graph)."""
        if self._torch_trunk is None:
            from liwi.model.u2layernet import TRUNKS, U2Trunk, load_trunk_weights
            from liwi.weights import trunk_of

            name = trunk_of(self.weight)
            if name not in TRUNKS:
                raise ValueError(
                    f"no torch trunk for weight {self.weight!r} (known: {list(TRUNKS)})"
                )
            trunk = U2Trunk(name)
            load_trunk_weights(trunk, str(self.path))
            self._torch_trunk = trunk.eval().to(self.device)
        return self._torch_trunk

    def _run_trunk(self, images: np.ndarray) -> np.ndarray:
        """N×3×S×S images in [0, 1] → N×7×S×S maps, one forward pass of the torch trunk.

        TF32 convolutions are off (they drift ~1e-3 from the ONNX graph on recent GPUs);
        the network is small, so full float32 costs little.
        """
        import torch

        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            out = self._trunk()(x.to(self.device))  # normalises with the same mean/std
        return out.float().cpu().numpy()

    # -- public -----------------------------------------------------------------------
    def small(self, image: np.ndarray, side: int = INPUT_SIZE) -> np.ndarray:
        """H×W×3 float in [0, 1] → the side×side×3 float32 image the network sees."""
        return resize_map(np.asarray(image, np.float32), (side, side))

    def preprocess(self, image: np.ndarray, side: int = INPUT_SIZE) -> np.ndarray:
        """H×W×3 float in [0, 1] → 1×3×side×side normalised network input."""
        return _normalised(self.small(image, side).transpose(2, 0, 1))[None]

    def batch_maps(self, images: np.ndarray, backend: str = "auto") -> np.ndarray:
        """N×3×S×S images in [0, 1] (S a multiple of 32) → the network's N×7×S×S maps
        (fused, then sides 1-6), probabilities.

        ``backend``: ``"onnx"`` runs onnxruntime one image at a time (the pinned graphs have
        a batch of 1), exactly :meth:`maps`' numbers; ``"torch"`` runs our trunk once on
        the stacked batch on :attr:`device` (equal to the ONNX graph within 5e-4);
        ``"auto"``: torch on a GPU or with a given trunk, ONNX otherwise.
        """
        if backend == "auto":
            torch_here = self.device.startswith("cuda") or self._torch_trunk is not None
            backend = "torch" if torch_here else "onnx"
        if backend == "onnx":
            return np.concatenate([self._run_onnx(_normalised(im)[None]) for im in images])
        if backend != "torch":
            raise ValueError(f"backend must be auto, onnx or torch, not {backend!r}")
        return self._run_trunk(images)

    def fused_maps(self, images: list[np.ndarray], backend: str = "auto") -> np.ndarray:
        """The fused map d0 (what :meth:`alpha` reads) of each H×W×3 image: N×320×320
        float32 (:meth:`batch_maps` on the images resized to 320²), the base weight's
        where :meth:`maps` would take it (second opinion)."""
        small = np.stack([self.small(im).transpose(2, 0, 1) for im in images])
        fused = self.batch_maps(small, backend)[:, 0].astype(np.float32)
        unsure = [
            i for i, (m, im) in enumerate(zip(fused, images, strict=True)) if asks_base(m, im)
        ]
        base = self._base() if unsure else None
        if base is not None:
            others = base.batch_maps(small[unsure], backend)[:, 0].astype(np.float32)
            for i, other in zip(unsure, others, strict=True):
                if prefer_base(fused[i], other):
                    fused[i] = other
        return fused

    def maps(self, image: np.ndarray, side: int = INPUT_SIZE) -> np.ndarray:
        """The network's seven raw side×side maps (fused, then sides 1-6), probabilities;
        the base weight's when this one is unsure and the base is sure (second opinion).

        Model v2 (:class:`~liwi.model.u2layernet.U2LayerNet`) reads all seven; the alpha
        is made from the first. ``side`` below 320 trades detail for time (the predictor's
        second look, which only looks for large objects).
        """
        return self.maps_with_source(image, side)[0]

    def maps_with_source(self, image: np.ndarray, side: int = INPUT_SIZE) -> tuple[np.ndarray, str]:
        """:meth:`maps` and the weight whose maps they are (this one or its base)."""
        own = self._own_maps(image, side)
        if asks_base(own[0], image):
            base = self._base()
            if base is not None:
                other = base._own_maps(image, side)
                if prefer_base(own[0], other[0]):
                    return other, base.weight
        return own, self.weight

    def _own_maps(self, image: np.ndarray, side: int) -> np.ndarray:
        if side % 32:
            raise ValueError(f"side {side} must be a multiple of 32 (five 2x poolings)")
        x = self.preprocess(image, side)
        raw = self._run_torch(x) if self.device.startswith("cuda") else self._run_onnx(x)
        return raw[0].astype(np.float32)

    def _base(self) -> SalientPrior | None:
        """The base weight's prior, built on first use; None when there is none or it is
        not fetched (logged once, naming the fetch command: the answer is then this
        weight's own, never an error)."""
        if self._base_prior is None and self.base is not None:
            from liwi.weights import WeightsError, base_refs

            errors = []
            for ref in base_refs(self.weight):  # beside a lake weight first, then the cache
                try:
                    self._base_prior = SalientPrior(ref, device=self.device, threads=self._threads)
                    break
                except WeightsError as exc:
                    errors.append(str(exc))
            else:
                log.warning("no second opinion for prior %s: %s", self.weight, "; ".join(errors))
                self.base = None
        return self._base_prior

    def saliency(self, image: np.ndarray, maps: np.ndarray | None = None) -> np.ndarray:
        """Min-max normalised 320×320 salient map in [0, 1] (no stretch, no resize); all
        zero when the network's peak is below ``MIN_PEAK`` or the photo is flat (nothing
        salient)."""
        m = (self.maps(image) if maps is None else maps)[0].astype(np.float32)
        lo, hi = float(m.min()), float(m.max())
        if hi < MIN_PEAK or hi - lo <= 1e-6 or is_flat(image):
            return np.zeros_like(m)
        return (m - lo) / (hi - lo)

    def alpha(self, image: np.ndarray, maps: np.ndarray | None = None) -> np.ndarray:
        """Soft foreground alpha at the image's resolution: the map resized (bicubic when
        enlarged, area when shrunk), then stretched, so the stretch steepens the edge at
        the output's own resolution; ``maps`` (from :meth:`maps`) saves running the
        network again."""
        import cv2

        sal = self.saliency(image, maps)
        h, w = np.shape(image)[:2]
        if h > sal.shape[0] or w > sal.shape[1]:
            up = cv2.resize(sal, (w, h), interpolation=cv2.INTER_CUBIC)
        else:
            up = resize_map(sal, (h, w))
        return np.clip((up - STRETCH_LOW) / (STRETCH_HIGH - STRETCH_LOW), 0, 1).astype(np.float32)
