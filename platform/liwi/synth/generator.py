"""One synthetic layered sample from (seed, index): a LayerStack and its degraded flat image.

Every random draw comes from one generator seeded by ``(seed, index, size, n_objects)``,
so a sample is regenerated exactly from the spec recorded in its ``agent_trace``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from liwi.layers import LayerStack
from liwi.synth import shadows
from liwi.synth.backgrounds import Photo, random_background
from liwi.synth.cutouts import Cutout, build_cutout_object
from liwi.synth.degrade import degrade
from liwi.synth.objects import SceneObject, build_object, harmonize

GENERATOR_VERSION = "liwi.synth/2"  # bump when the same spec would give different pixels


@dataclass(frozen=True)
class SampleSpec:
    """Everything needed to regenerate a sample (given the same background photos)."""

    seed: int
    index: int
    size: int
    n_objects: int  # 1 → a 2-layer sample, 2 → a 3-layer sample

    def rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.index, self.size, self.n_objects])


@dataclass
class SynthSample:
    """A generated sample: clean layers, their clean composite and the degraded image."""

    spec: SampleSpec
    stack: LayerStack
    clean: np.ndarray  # composite of ``stack`` before degradation (H×W×3 float32)
    image: bytes  # the degraded flat image, encoded
    ext: str  # "jpg" or "png"
    params: dict  # every derived generator parameter (JSON-ready)
    degradation: dict[str, float]
    tool: str = "synth.generate"  # or "synth.render" (liwi.synth.render)
    version: str = GENERATOR_VERSION

    def trace(self) -> list[dict]:
        """The ``agent_trace`` entry: the spec to regenerate plus the derived parameters."""
        return [
            {
                "tool": self.tool,
                "version": self.version,
                "spec": asdict(self.spec),
                "params": self.params,
                "outcome": "ok",
            }
        ]


def _layout(rng: np.random.Generator, size: int, n: int) -> tuple[float, list[tuple]]:
    """Horizon row and, back to front, (centre_x, base_y, height) of each object."""
    horizon = float(rng.uniform(0.1, 0.45) * size)
    lo = max(horizon + 0.2 * size, 0.5 * size)
    bases = np.sort(rng.uniform(lo, 0.92 * size, n))
    if n > 1 and bases[-1] - bases[0] < 0.04 * size:  # keep a clear depth order
        bases[-1] = min(bases[0] + 0.04 * size, 0.97 * size)
    placed: list[tuple] = []
    for base in bases:
        # Perspective: nearer (lower) objects look taller.
        height = np.clip((base - horizon) * rng.uniform(0.6, 1.1), 0.2 * size, 0.6 * size)
        for _ in range(20):  # avoid one object hiding another completely
            x = rng.uniform(0.18, 0.82) * size
            if all(abs(x - px) > 0.22 * size for px, _, _ in placed):
                break
        placed.append((float(x), int(base), int(height)))
    return horizon, placed


def generate(
    spec: SampleSpec,
    photos: list[Photo],
    cutouts: tuple[Cutout, ...] = (),
    cutout_share: float = 1.0,
) -> SynthSample:
    """Generate the sample described by ``spec`` using ``photos`` for backgrounds and
    photo-filled shapes; with ``cutouts``, each object is a real cut-out with probability
    ``cutout_share`` (without them the random stream, and so every pixel, is unchanged)."""
    if spec.n_objects < 1:
        raise ValueError(f"n_objects must be ≥ 1, got {spec.n_objects}")
    rng = spec.rng()
    size = spec.size
    background, bg_params = random_background(rng, photos, size)
    lights = shadows.random_lights(rng)
    tint = shadows.shadow_tint(rng)
    horizon, layout = _layout(rng, size, spec.n_objects)
    # Cut-outs come from the other photos: a patch of the background itself would hide.
    sources = [p for p in photos if p.name != bg_params["photo"]] or photos

    objects: list[SceneObject] = []
    attenuations = []
    contact = []
    for cx, base, height in layout:
        if cutouts and rng.random() < cutout_share:
            obj = build_cutout_object(rng, (size, size), cx, base, height, cutouts)
        else:
            obj = build_object(rng, (size, size), cx, base, height, sources, lights[0].direction())
        obj.color = harmonize(obj.color, obj.alpha, background)
        strength = float(rng.uniform(0.3, 0.7))  # contact darkening at the base
        depth = int(obj.params["width"] * rng.uniform(0.15, 0.45))  # footprint depth, rows
        obj.params["depth_px"] = depth
        attenuations.append(
            shadows.object_attenuation(obj.alpha, obj.base_y, lights, tint, strength, depth)
        )
        objects.append(obj)
        contact.append(strength)

    stack = LayerStack.from_arrays(
        background,
        [o.color for o in objects],
        [o.alpha for o in objects],
        attenuations,
        labels=[o.label for o in objects],
    )
    for obj, strength in zip(stack.objects, contact, strict=True):
        obj.scores = {
            "contact_strength": strength,
            "shadow_strength": float(sum(li.strength for li in lights)),
        }
    clean = stack.composite()
    image, ext, degradation = degrade(rng, clean)
    params = {
        "background": bg_params,
        "horizon_y": horizon,
        "lights": [li.as_dict() for li in lights],
        "shadow_tint": [float(t) for t in tint],
        "objects": [
            {**o.params, "label": o.label, "contact_strength": c}
            for o, c in zip(objects, contact, strict=True)
        ],
        "degradation": degradation,
    }
    if cutouts:  # regeneration needs the same folder of cut-outs and share
        params["cutouts"] = {"count": len(cutouts), "share": cutout_share}
    stack.meta = {"generator": GENERATOR_VERSION, "spec": asdict(spec)}
    return SynthSample(spec, stack, clean, image, ext, params, degradation)


def spec_from_trace(
    agent_trace: list[dict], tool: str = "synth.generate", version: str = GENERATOR_VERSION
) -> SampleSpec:
    """The :class:`SampleSpec` recorded in a row's ``agent_trace`` (parsed JSON) by ``tool``
    (``liwi.synth.render.spec_from_trace`` reads rendered rows)."""
    for entry in agent_trace:
        if entry.get("tool") == tool:
            if entry.get("version") != version:
                raise ValueError(f"trace made by {entry.get('version')}, this is {version}")
            return SampleSpec(**entry["spec"])
    raise ValueError(f"agent_trace has no {tool} entry")
