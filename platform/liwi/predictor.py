"""The one inference API: ``Predictor.from_uri(uri).decompose(image) -> LayerStack``.

Pipeline per image:

1. resize so the long side is the model resolution (aspect kept), pad to a multiple
   of ``2^depth`` (replicate padding; prompt channels zero-padded);
2. run :class:`~liwi.model.network.LayerNet` — it peels the top (or prompted) object;
3. crop the padding, upsample alpha, shadow attenuation and the background *delta* to
   the input resolution and add it to the full-resolution input, so detail outside the
   object is the input's own; the object's colour is estimated at full resolution
   (:func:`liwi.priors.refine.edge_colours`);
4. repeat on the predicted background (iterative peeling, no prompt after the first
   pass) until ``max_layers`` is reached or the peeled alpha is (almost) empty.

With a pretrained salient-object prior (:class:`liwi.priors.salient.SalientPrior`, the
default), the prior decides *what* is peeled and the network *how*: the prior's
full-resolution alpha is split into objects (top first), each object's soft mask is the
network's mask prompt for one pass and becomes the layer's alpha, and the network gives
the object's shadow and the background under it. When the layer budget has room after
the prior's objects, the prior looks again at the peeled background for an object it
missed (``SECOND_LOOK``). The
background keeps the input's own pixels outside the object and shadow region
(:func:`liwi.assembly.assemble`). A box prompt narrows the prior to the box; point prompts and
prompts where the prior sees nothing fall back to the network alone.

The CLI, the ADD job (as a tool), the evaluator and Ray Serve all wrap this class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from liwi.assembly import assemble
from liwi.layers import LayerStack, ObjectLayer
from liwi.model.prompts import Prompt, rasterize
from liwi.priors.salient import is_flat
from liwi.weights import DEFAULT_WEIGHT

# The model that ships with the package (see docs/model_card.md).
DEFAULT_MODEL = Path(__file__).parent / "assets" / "models" / "liwi-default.pt"
# A peeled object smaller than this fraction of the image (mean alpha) ends peeling.
MIN_OBJECT_AREA = 0.002
# Default number of layers (background + objects) a decomposition may have.
DEFAULT_MAX_LAYERS = 3
# Prior objects: a connected part of the prior's alpha (> 0.5) is an object when it covers
# ≥ PRIOR_MIN_AREA of the image and ≥ PRIOR_REL_AREA of the largest part; it keeps the soft
# alpha around itself (liwi.priors.refine.grow_px).
PRIOR_MIN_AREA = 0.004
PRIOR_REL_AREA = 0.08
# Second look: once the prior's objects are peeled and passes remain, the prior runs again
# on the peeled background and a new object (a part of its alpha > 0.5 at most
# SECOND_LOOK_OVERLAP inside what was peeled, and ≥ PRIOR_REL_AREA of the largest peeled
# object) is peeled too. It gained union with U²-Netp (B 0.784 -> 0.802, C 0.721 -> 0.767;
# seventh session) and costs a prior pass; off since the fourteenth session: u2netp-liwi's
# first look holds what it found, and its finds are residue (union B 0.861 -> 0.896, E
# 0.812 -> 0.873 without it; RESULTS.md). `liwi predict --second-look` turns it on.
SECOND_LOOK = False
SECOND_LOOK_OVERLAP = 0.3
# ... and the prior's own probability peaks at ≥ SECOND_LOOK_MIN_PEAK inside the new object:
# once the salient objects are gone the map is min-max normalised over what is left, so a
# crater or a floor seam can pass 0.5. Of 69 candidates on the held-out splits B, C and D,
# none of the 14 below 0.7 lay on a true object; 34 of the 55 above did (RESULTS.md).
SECOND_LOOK_MIN_PEAK = 0.7
# ... and that look runs the prior at SECOND_LOOK_SIDE² (its training side is 320; a smaller
# look costs less, e.g. 224² ≈ 0.45 × the time, and only has to find objects ≥ PRIOR_REL_AREA
# of one already found).
SECOND_LOOK_SIDE = 320
# ... and, with SECOND_LOOK_NO_SPAN, the new object does not span the frame (touch two
# opposite edges): once the objects are peeled a bare floor or wall can fill the prior's
# map. On the rendered split E the second look found 0.21-0.68 of the image that way
# (union 0.736 -> 0.762 without them); B, with a true find of 0.34 of the image, is
# unchanged, where a cap on the area cost it 0.009 (RESULTS.md, tenth session).
SECOND_LOOK_NO_SPAN = True
# A box prompt uses the prior when one prior object covers this share of the box; that
# object is kept within the box grown by BOX_SLACK of the box's size on every side.
PRIOR_BOX_MIN_COVER = 0.05
BOX_SLACK = 0.25
# Each pass also runs the network on the mirrored photo (one batch, one more forward) and
# averages the answers: shadow IoU B 0.701 -> 0.708, C 0.627 -> 0.642 (stage 8; RESULTS.md).
FLIP_AVERAGE = True
# LayerNet sees the photo with its long side at NET_SIDE_SCALE × its training resolution:
# training crops put the short side at 1.0–1.17 × that resolution, and a square photo at
# 1.125 × sits inside that range (128 px -> 144 px: held-out shadow IoU B 0.708 -> 0.711,
# C 0.642 -> 0.654 with stage 8; RESULTS.md). Costs (144/128)² = 1.27 × per forward.
NET_SIDE_SCALE = 1.125
# A flat photo (liwi.priors.salient.is_flat) is not peeled: the network alone invents
# objects in a black frame (a flat 3999² PNG cost 1.6 GB to peel).


class PredictorError(ValueError):
    """Bad input to the predictor or a model URI that cannot be resolved."""


def _find_checkpoint(folder: Path) -> Path:
    from liwi.model.checkpoint import FORMAT, load_checkpoint

    candidates = sorted(folder.rglob("*.pt")) + sorted(folder.rglob("*.pth"))
    for c in candidates:
        try:
            if load_checkpoint(c).get("format") == FORMAT:
                return c
        except ValueError:
            continue
    raise PredictorError(f"no liwi-layernet checkpoint (*.pt) found under {folder}")


def resolve_checkpoint(uri: str | os.PathLike[str] | None) -> Any:
    """A local checkpoint path (or an in-memory model) for ``uri``.

    ``None`` → the shipped default; a path (file or folder holding one ``*.pt``);
    ``file://`` / ``s3://`` → read through :class:`liwi.lake.Lake`; ``models:/…`` or
    ``runs:/…`` → the checkpoint logged with the MLflow model (:func:`liwi.tracking.download_model`).
    """
    if uri is None:
        if not DEFAULT_MODEL.is_file():
            raise PredictorError(f"the default model is missing: {DEFAULT_MODEL}")
        return DEFAULT_MODEL
    uri = os.fspath(uri)
    if uri.startswith(("models:/", "runs:/", "mlflow-artifacts:/")):
        # liwi.tracking is the only MLflow caller: it resolves aliases against the configured
        # tracking store (MLFLOW_TRACKING_URI or the local default), caches registered
        # versions and returns the checkpoint file logged by the training job
        from liwi.tracking.registry import TrackingError, download_model

        try:
            return download_model(uri)
        except TrackingError as exc:
            raise PredictorError(str(exc)) from exc
    if uri.startswith(("s3://", "file://")):
        from liwi.lake import Lake
        from liwi.paths import cache_file

        lake = Lake.from_uri(uri)
        return cache_file(lake.read_bytes(lake.root))
    path = Path(uri).expanduser()
    if path.is_dir():
        return _find_checkpoint(path)
    if not path.is_file():
        raise PredictorError(f"model not found: {uri!r} (a checkpoint path, lake URI or models:/…)")
    return path


def as_input_image(image: Any) -> np.ndarray:
    """An H×W×3 float image; encoded bytes and paths are decoded at most ``WORK_PIXELS``
    (larger photos are downscaled while decoding, see :mod:`liwi.imageio`)."""
    from liwi.imageio import WORK_PIXELS, decode_rgb
    from liwi.layers import check_rgb

    if isinstance(image, bytes | bytearray):
        return decode_rgb(bytes(image), work_pixels=WORK_PIXELS)
    if isinstance(image, str | Path):
        return decode_rgb(Path(image).read_bytes(), work_pixels=WORK_PIXELS)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    try:
        arr = check_rgb(arr, "image")
    except ValueError as exc:
        raise PredictorError(str(exc)) from exc
    if min(arr.shape[:2]) < 1:
        raise PredictorError(f"empty image of shape {arr.shape}")
    return np.clip(arr, 0.0, 1.0)


class Predictor:
    """Wraps a :class:`~liwi.model.network.LayerNet` for decomposing arbitrary images."""

    def __init__(
        self, model, device: str | None = None, source: str = "<in-memory>", prior: Any = None
    ) -> None:
        import torch

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        if self.device.type == "cpu":
            # NHWC convolutions: the default network's two 144² views take 81 ms instead of
            # 123 ms on 2 cores (outputs equal within 2e-5; benchmarks/RESULTS.md, 15th session)
            self.model = self.model.to(memory_format=torch.channels_last)
        self.config = model.config
        self.source = source
        self.prior = prior  # a SalientPrior (or anything with .alpha(image)), or None
        # whose alpha a prior-planned layer gets: the prior instance's ("prior") or, for a
        # network that refines the prompt (model v2), the network's own ("model")
        self.alpha_source = "prior"
        self.flip_average = FLIP_AVERAGE  # average with the mirrored photo's answer
        self.second_look = SECOND_LOOK  # the prior looks again at the peeled background
        self.second_look_side = SECOND_LOOK_SIDE  # at this input side
        # long side the network sees; model v2 trains on crops of the prior's own 320-px
        # input and reads its maps there, so it keeps its resolution
        scale = 1.0 if self.is_v2 else NET_SIDE_SCALE
        self.net_side = round(self.config.resolution * scale)

    @classmethod
    def from_uri(
        cls,
        uri: str | os.PathLike[str] | None = None,
        device: str | None = None,
        prior: str | None = DEFAULT_WEIGHT,
    ) -> Predictor:
        """Load a model from a checkpoint path, lake URI, MLflow URI, or the default (None).

        ``prior`` names the salient-object prior's weight (a registered name, lake URI or
        file; :mod:`liwi.weights`), or None for the network alone.
        """
        from liwi.model import build_model

        resolved = resolve_checkpoint(uri)
        model = resolved if not isinstance(resolved, Path) else build_model(checkpoint=resolved)
        salient = None
        if prior is not None:
            from liwi.priors.salient import SalientPrior
            from liwi.weights import WeightsError

            try:
                salient = SalientPrior(prior, device=device)
            except WeightsError as exc:
                raise PredictorError(str(exc)) from exc
        source = str(uri) if uri is not None else "default"
        return cls(model, device=device, source=source, prior=salient)

    # -- geometry -------------------------------------------------------------------
    def _net_size(self, h: int, w: int) -> tuple[int, int]:
        """Size (h, w) the image is resized to: long side = ``net_side``."""
        f = self.net_side / max(h, w)
        return max(1, round(h * f)), max(1, round(w * f))

    def _padded(self, nh: int, nw: int) -> tuple[int, int]:
        m = self.config.multiple
        return -(-nh // m) * m, -(-nw // m) * m

    # -- inference ------------------------------------------------------------------
    @property
    def is_v2(self) -> bool:
        """Model v2 (:class:`~liwi.model.u2layernet.U2LayerNet`): a U²-Net trunk + heads."""
        return getattr(self.config, "arch", None) == "u2layernet"

    @property
    def reads_saliency(self) -> bool:
        """Model v2 with a frozen trunk reads the prior's seven saliency maps (run once per
        photo); one whose trunk was fine-tuned runs its own trunk in every pass."""
        return self.is_v2 and not self.config.train_trunk

    def _run(
        self,
        images: list[np.ndarray],
        prompts: list[Prompt | None],
        maps: list[np.ndarray | None] | None = None,
    ) -> list[dict]:
        """One peeling pass on full-resolution images; returns full-resolution raw maps.

        Images are batched by padded network size, so an image's result never depends on
        what it was batched with (GroupNorm statistics see no foreign padding).
        """
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(self._padded(*self._net_size(*im.shape[:2])), []).append(i)
        results: list[dict | None] = [None] * len(images)
        maps = maps or [None] * len(images)
        for idx in groups.values():
            outs = self._run_same_size(
                [images[i] for i in idx], [prompts[i] for i in idx], [maps[i] for i in idx]
            )
            for i, r in zip(idx, outs, strict=True):
                results[i] = r
        return results  # type: ignore[return-value]

    def _run_same_size(
        self, images: list[np.ndarray], prompts: list[Prompt | None], maps: list
    ) -> list[dict]:
        import torch
        from torch.nn import functional as F

        sizes = [self._net_size(*im.shape[:2]) for im in images]
        ph, pw = self._padded(*sizes[0])
        n = len(images)
        views = 2 if self.flip_average else 1  # view 1: every input mirrored left-right
        x = torch.zeros(views * n, 3, ph, pw)
        p = torch.zeros(views * n, 3, ph, pw)
        with_maps = all(m is not None for m in maps)
        sal = torch.zeros(views * n, 7, ph, pw) if with_maps else None
        for i, (im, (nh, nw), pr) in enumerate(zip(images, sizes, prompts, strict=True)):
            t = torch.from_numpy(im).permute(2, 0, 1)[None]
            small = F.interpolate(t, size=(nh, nw), mode="area")
            prompt = torch.from_numpy(rasterize(pr, im.shape[:2], (nh, nw)))
            if sal is not None:  # the prior's maps (its own square input) at the net's geometry
                m = F.interpolate(torch.from_numpy(maps[i])[None], size=(nh, nw), mode="bilinear")
            for v in range(views):  # mirror the image itself, so the padding stays right/below
                j, dims = v * n + i, [-1] if v else []
                x[j] = F.pad(small.flip(dims), (0, pw - nw, 0, ph - nh), mode="replicate")[0]
                p[j, :, :nh, :nw] = prompt.flip(dims)
                if sal is not None:
                    sal[j] = F.pad(m.flip(dims), (0, pw - nw, 0, ph - nh), mode="replicate")[0]
        x, p = x.to(self.device), p.to(self.device)
        extra = {"saliency": sal.to(self.device)} if sal is not None else {}
        with torch.no_grad():
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = self.model(x, p, **extra)
            else:
                out = self.model(x, p, **extra)

        def view(key: str, i: int, nh: int, nw: int) -> torch.Tensor:
            """Image i's answer for ``key`` on its own (unpadded) grid, views averaged."""
            a = out[key][i : i + 1, :, :nh, :nw].float()
            if views == 1:
                return a
            return (a + out[key][n + i : n + i + 1, :, :nh, :nw].float().flip(-1)) / 2

        results = []
        for i, (im, (nh, nw)) in enumerate(zip(images, sizes, strict=True)):
            h, w = im.shape[:2]
            xi = x[i : i + 1, :, :nh, :nw]
            background = view("background", i, nh, nw)
            low = {
                "alpha": view("alpha", i, nh, nw),
                "shadow": view("shadow", i, nh, nw),
                "bg_delta": background - xi,
                "background": background,
            }
            up = {
                k: F.interpolate(v, size=(h, w), mode="bilinear", align_corners=False)[0]
                .permute(1, 2, 0)
                .cpu()
                .numpy()
                for k, v in low.items()
            }
            results.append({**up, "image": im})
        return results

    def decompose(
        self,
        image: Any,
        prompt: Prompt | None = None,
        max_layers: int = DEFAULT_MAX_LAYERS,
    ) -> LayerStack:
        """Decompose one image (H×W×3 float/uint8 array, encoded bytes or a path)."""
        return self.decompose_batch([image], [prompt], max_layers=max_layers)[0]

    def decompose_batch(
        self,
        images: list[Any],
        prompts: list[Prompt | None] | None = None,
        max_layers: int = DEFAULT_MAX_LAYERS,
        batch_size: int = 8,
    ) -> list[LayerStack]:
        """Decompose several images; ``prompts`` (one per image or None) steer the first peel."""
        if max_layers < 1:
            raise PredictorError(f"max_layers must be ≥ 1 (background only), got {max_layers}")
        imgs = [as_input_image(im) for im in images]
        prompts = list(prompts) if prompts is not None else [None] * len(imgs)
        if len(prompts) != len(imgs):
            raise PredictorError(f"{len(prompts)} prompts for {len(imgs)} images")
        for im, pr in zip(imgs, prompts, strict=True):
            if pr is not None:
                pr.validate(*im.shape[:2])
        out: list[LayerStack] = []
        for start in range(0, len(imgs), batch_size):
            chunk = imgs[start : start + batch_size]
            out += self._peel(chunk, prompts[start : start + batch_size], max_layers)
        return out

    def _plan(
        self, image: np.ndarray, prompt: Prompt | None, passes: int, maps: np.ndarray | None
    ) -> list[tuple]:
        """(prompt, alpha) per peeling pass from the prior; alpha None = the network's own."""
        if not self._prior_plans(prompt):
            return [(prompt, None)] + [(None, None)] * (passes - 1)
        from liwi.priors.refine import grow_px, instances

        alpha = self.prior.alpha(image, maps=maps)
        grow = grow_px(image.shape)
        if prompt is not None and prompt.box is not None:
            return self._plan_box(alpha, prompt, passes, grow)
        objs = instances(alpha, passes, PRIOR_MIN_AREA, PRIOR_REL_AREA, grow, merge_rest=True)
        if not objs:  # the prior sees nothing salient: let the network look on its own
            return [(None, None)] * passes
        return [(Prompt(mask=m), m) for m in objs]

    def _prior_plans(self, prompt: Prompt | None) -> bool:
        """Whether the prior plans the peels (not when points or a mask name the object)."""
        return self.prior is not None and not (prompt is not None and prompt.names_the_object)

    @staticmethod
    def _plan_box(alpha: np.ndarray, prompt: Prompt, passes: int, grow: int) -> list[tuple]:
        """The prior's object that the box holds most of, kept within the box grown by
        BOX_SLACK of its size (a hand-drawn box is loose); the other objects after it."""
        from liwi.priors.refine import box_mask, instances

        inside = box_mask(alpha.shape, prompt.box)
        objs = instances(alpha, 8, PRIOR_MIN_AREA, 0.0, grow)  # every object, any size
        held = [float((m * inside).sum()) for m in objs]
        if not objs or max(held) < PRIOR_BOX_MIN_COVER * inside.sum():
            return [(prompt, None)] + [(None, None)] * (passes - 1)
        best = objs.pop(int(np.argmax(held))) * box_mask(alpha.shape, prompt.box, BOX_SLACK)
        rest = [m for m in objs if m.sum() >= PRIOR_REL_AREA * best.sum()][: passes - 1]
        return [(Prompt(mask=best, box=prompt.box), best)] + [(Prompt(mask=m), m) for m in rest]

    def _look_again(self, background: np.ndarray, peeled: list[ObjectLayer]) -> list[tuple] | None:
        """The prior's second look at a peeled background: one more (prompt, alpha) step
        for the largest new object it sees there, or none (see SECOND_LOOK); None when it
        does not look (switched off, no prior, a flat background)."""
        if not self.second_look or self.prior is None or is_flat(background):
            return None
        from liwi.priors.refine import grow_px, instances, resize_map

        maps = self.prior.maps(background, side=self.second_look_side)
        alpha = self.prior.alpha(background, maps=maps)
        raw = resize_map(maps[0], background.shape[:2])  # probabilities, not normalised
        objs = instances(alpha, 8, PRIOR_MIN_AREA, 0.0, grow_px(background.shape))
        peeled_hard = [obj.alpha > 0.5 for obj in peeled]
        taken = np.logical_or.reduce(peeled_hard)
        largest = max(float(h.sum()) for h in peeled_hard)
        new = []
        for m in objs:
            hard = m > 0.5
            area = float(hard.sum())
            spans = (hard[:, 0].any() and hard[:, -1].any()) or (hard[0].any() and hard[-1].any())
            if (
                area >= PRIOR_REL_AREA * largest
                and not (SECOND_LOOK_NO_SPAN and spans)
                and (hard & taken).sum() <= SECOND_LOOK_OVERLAP * area
                and raw[hard].max() >= SECOND_LOOK_MIN_PEAK
            ):
                new.append((area, m))
        if not new:
            return []
        m = max(new, key=lambda am: am[0])[1]
        return [(Prompt(mask=m), m)]

    def _peel(self, imgs: list[np.ndarray], prompts: list, max_layers: int) -> list[LayerStack]:
        passes = max_layers - 1
        peelable = [bool(passes) and not is_flat(im) for im in imgs]
        # the prior's maps of each photo, once (the plan's instances; model v2 reads them in
        # every pass), and the weight that answered (liwi.priors.salient's second opinion)
        answers = [
            self.prior.maps_with_source(im)
            if ok and self.prior and (self.reads_saliency or self._prior_plans(pr))
            else (None, None)
            for im, pr, ok in zip(imgs, prompts, peelable, strict=True)
        ]
        maps = [m for m, _ in answers]
        plans = [
            self._plan(im, pr, passes, m) if ok else []
            for im, pr, m, ok in zip(imgs, prompts, maps, peelable, strict=True)
        ]
        current = list(imgs)
        peeled: list[list[ObjectLayer]] = [[] for _ in imgs]
        looked = ["not run"] * len(imgs)  # the second look: "not run", "nothing" or "found"
        active = [i for i in range(len(imgs)) if plans[i]]
        for k in range(passes):
            if not active:
                break
            res = self._run(
                [current[i] for i in active],
                [plans[i][k][0] for i in active],
                [maps[i] if self.reads_saliency else None for i in active],
            )
            still = []
            for i, raw in zip(active, res, strict=True):
                planned = plans[i][k][1]
                r = assemble(raw, planned if self.alpha_source == "prior" else None)
                area = float(r["alpha"].mean())
                if area < MIN_OBJECT_AREA:
                    continue
                shadow = r["shadow"] if r["shadow"].shape[2] == 3 else r["shadow"][..., 0]
                label = "object" if planned is None else "salient object"
                obj = ObjectLayer.from_maps(
                    r["color"], r["alpha"], shadow, label=label, scores={"area": area}
                )
                peeled[i].append(obj)
                current[i] = r["background"]
                if k + 1 == len(plans[i]) and k + 1 < passes and planned is not None:
                    step = self._look_again(current[i], peeled[i])
                    if step is not None:
                        plans[i] += step
                        looked[i] = "found" if step else "nothing"
                if k + 1 < len(plans[i]):
                    still.append(i)
            active = still
        stacks = []
        for i in range(len(imgs)):
            meta = {
                "model": self.source,
                "model_resolution": self.config.resolution,
                "net_side": self.net_side,
                "peel_passes": len(peeled[i]),
                "second_look": looked[i],
                "prompted": prompts[i] is not None and not prompts[i].empty,
                "prior": getattr(self.prior, "weight", None),
                "prior_answer": answers[i][1],
            }
            # Peeled top first; a stack lists objects back to front.
            stacks.append(LayerStack(background=current[i], objects=peeled[i][::-1], meta=meta))
        return stacks
