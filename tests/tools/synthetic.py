"""Synthetic scenes with a known object and shadow, built with liwi.layers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liwi.layers import LayerStack


@dataclass
class Scene:
    stack: LayerStack
    image: np.ndarray  # composite
    alpha: np.ndarray  # object alpha
    attenuation: np.ndarray  # true S, H×W×3
    background: np.ndarray  # true shadow-free background


def textured_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth colour gradient with mild fine texture (like a floor or wall)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.55 + 0.2 * xx / w, 0.6 + 0.1 * yy / h, 0.45 + 0.15 * (1 - xx / w)], axis=2)
    tex = rng.normal(0, 0.015, (h, w, 1)).astype(np.float32)
    return np.clip(base + tex, 0, 1).astype(np.float32)


def disc(h: int, w: int, cy: float, cx: float, ry: float, rx: float, soft: float = 1.5):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return np.clip((1.0 - d) * min(ry, rx) / soft + 0.5, 0, 1).astype(np.float32)


def shadow_scene(
    h: int = 160, w: int = 200, strength: float = 0.5, with_shadow: bool = True, seed: int = 0
) -> Scene:
    """A round object standing on a textured floor, casting an elliptical shadow to its right."""
    rng = np.random.default_rng(seed)
    bg = textured_background(h, w, rng)
    alpha = disc(h, w, cy=0.45 * h, cx=0.4 * w, ry=0.22 * h, rx=0.14 * w)
    color = np.zeros((h, w, 3), np.float32)
    color[...] = (0.8, 0.15, 0.2)
    color += rng.normal(0, 0.02, (h, w, 3)).astype(np.float32)
    color = np.clip(color, 0, 1)
    if with_shadow:
        footprint = disc(h, w, cy=0.6 * h, cx=0.58 * w, ry=0.1 * h, rx=0.22 * w, soft=4.0)
        s = 1.0 - (1.0 - strength) * footprint
        s = np.repeat(s[..., None], 3, axis=2).astype(np.float32)
    else:
        s = np.ones((h, w, 3), np.float32)
    stack = LayerStack.from_arrays(bg, [color], [alpha], [s])
    return Scene(stack, stack.composite(), alpha, stack.objects[0].attenuation, bg)


def objects_scene(h: int = 160, w: int = 220, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Two distinctly coloured soft-edged objects on a textured background (no shadows)."""
    rng = np.random.default_rng(seed)
    bg = textured_background(h, w, rng)
    a1 = disc(h, w, cy=0.5 * h, cx=0.3 * w, ry=0.3 * h, rx=0.16 * w)
    a2 = disc(h, w, cy=0.55 * h, cx=0.75 * w, ry=0.2 * h, rx=0.12 * w)
    c1 = np.broadcast_to(np.array([0.85, 0.15, 0.15], np.float32), (h, w, 3))
    c2 = np.broadcast_to(np.array([0.1, 0.2, 0.75], np.float32), (h, w, 3))
    stack = LayerStack.from_arrays(bg, [c1.copy(), c2.copy()], [a1, a2])
    return stack.composite(), [a1, a2]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / max(1, (a | b).sum()))
