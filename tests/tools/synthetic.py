"""Scenes with a known object and shadow for the tool tests: fixed placements drawn by
:func:`liwi.synth.procedural.procedural_scene` (the one scene generator)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liwi.layers import LayerStack
from liwi.synth.procedural import Placement, procedural_scene

HORIZON = 0.0  # the camera looks down at the floor: no wall line behind the objects
TEXTURE = 0.1  # a gently textured floor (strong blotches are dark patches, not shadows)


@dataclass
class Scene:
    stack: LayerStack
    image: np.ndarray  # composite
    alpha: np.ndarray  # object alpha
    attenuation: np.ndarray  # true S, H×W×3
    background: np.ndarray  # true shadow-free background


def shadow_scene(
    h: int = 160, w: int = 200, darkness: float = 0.5, with_shadow: bool = True, seed: int = 0
) -> Scene:
    """A round red object standing on a textured floor, casting a shadow to its right."""
    obj = Placement(cx=0.4, base=0.67, rx=0.14, ry=0.22, color=(0.8, 0.15, 0.2))
    stack = procedural_scene(
        seed,
        (h, w),
        objects=[obj],
        shadow=with_shadow,
        darkness=darkness,
        horizon=HORIZON,
        texture=TEXTURE,
    )
    o = stack.objects[0]
    return Scene(stack, stack.composite(), o.alpha, o.attenuation, stack.background)


def objects_scene(h: int = 160, w: int = 220, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """A big red and a smaller blue soft-edged object on a textured floor (no shadows)."""
    red = Placement(cx=0.3, base=0.8, rx=0.16, ry=0.3, color=(0.85, 0.15, 0.15))
    blue = Placement(cx=0.75, base=0.75, rx=0.12, ry=0.2, color=(0.1, 0.2, 0.75))
    stack = procedural_scene(
        seed, (h, w), objects=[red, blue], shadow=False, horizon=HORIZON, texture=TEXTURE
    )
    return stack.composite(), [o.alpha for o in stack.objects]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / max(1, (a | b).sum()))
