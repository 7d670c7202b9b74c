"""Physically plausible shadows as attenuation maps S (1 = unshadowed, H×W×3).

Geometry: the object is a flat occluder standing on the ground plane; its contact row is
``base_y``. A point ``h`` pixels above the base casts onto the ground at
``(x + sx·h, base_y + sy·h)`` — an affine shear/scale of the alpha silhouette about its
base line (``sy < 0``: the shadow falls behind the object, towards the horizon; ``sy > 0``:
towards the camera, mirrored). The light lies on the opposite side: the shadow falls on
the far side from the light.

Penumbra: an area light of angular size θ blurs the shadow by ≈ h·tan θ, so the blur
sigma grows linearly with the occluder height ``h`` above the contact point. We blur the
projected silhouette with a small stack of Gaussian levels and blend per pixel.

Contact darkening: ambient occlusion near the base, approximated by the silhouette
projected from a light straight above (squashed onto the base line) and blurred.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_ABS_SY = 0.1  # |sy| floor: a grazing projection (sy → 0) collapses to a line
FORESHORTENING = 0.6  # ground-plane depth appears this much shorter than width
BLUR_LEVELS = 7  # Gaussian levels for the spatially varying penumbra blur
DOWNSAMPLE_SIGMA = 3.0  # blurs wider than this (px) run at 1/⌊σ/3⌋ resolution (max 1/4)


@dataclass(frozen=True)
class Light:
    """A light as seen by the ground plane, in image-space shadow-direction terms."""

    sx: float  # horizontal shadow offset per pixel of height (+ = shadow to the right)
    sy: float  # vertical shadow offset per pixel of height (- = behind, + = towards camera)
    softness: float  # tan of the light's angular radius: penumbra sigma per pixel of height
    strength: float  # fraction of the light this source contributes (0..1)

    def direction(self) -> np.ndarray:
        """Unit vector towards the light (x right, y down, z to camera) for shading."""
        v = np.array([-self.sx, -1.0, -2.0 * self.sy], np.float32)
        return v / np.linalg.norm(v)

    def as_dict(self) -> dict:
        return {
            "sx": self.sx,
            "sy": self.sy,
            "softness": self.softness,
            "strength": self.strength,
        }


def random_lights(rng: np.random.Generator) -> list[Light]:
    """One key light, sometimes a second or third weaker one (indoor/stage lighting).

    The shadow direction is drawn as an image-space angle and a length (shadow length per
    pixel of object height); the vertical part is foreshortened by the ground plane.
    """
    n = int(rng.choice([1, 2, 3], p=[0.7, 0.22, 0.08]))
    total = float(rng.uniform(0.4, 0.8))  # total light blocked at the umbra
    weights = np.sort(rng.dirichlet(np.full(n, 2.0)))[::-1] if n > 1 else np.ones(1)
    lights = []
    for wgt in weights:
        length = float(rng.uniform(0.35, 1.3))  # shadow length / object height
        behind = rng.random() < 0.5  # shadow falls away from the camera (partly hidden)
        # 0 = to the right, π = to the left; straight back (π/2) would hide behind the object
        angle = float(rng.uniform(0.15, 1.25))
        angle = angle if rng.random() < 0.5 else np.pi - angle
        sy = length * np.sin(angle) * FORESHORTENING * (-1.0 if behind else 0.7)
        if abs(sy) < MIN_ABS_SY:
            sy = float(np.copysign(MIN_ABS_SY, sy))
        lights.append(
            Light(
                sx=float(length * np.cos(angle)),
                sy=float(sy),
                softness=float(rng.uniform(0.015, 0.12)),
                strength=float(total * wgt),
            )
        )
    return lights


def project_silhouette(alpha: np.ndarray, base_y: int, sx: float, sy: float) -> np.ndarray:
    """Shear/scale the silhouette about the base line onto the ground: (x, y) → ground.

    A pixel at height ``h = base_y − y`` lands at ``(x + sx·h, base_y + sy·h)``.
    """
    import cv2

    if abs(sy) < 1e-6:
        raise ValueError("sy must be non-zero (a grazing light collapses the shadow)")
    hgt, wid = alpha.shape
    # u = x − sx·y + sx·base;  v = −sy·y + base·(1 + sy)
    m = np.array([[1.0, -sx, sx * base_y], [0.0, -sy, base_y * (1.0 + sy)]], np.float64)
    return cv2.warpAffine(
        alpha, m, (wid, hgt), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def height_above_contact(shape: tuple[int, int], base_y: int, sy: float) -> np.ndarray:
    """Occluder height h (px) whose shadow lands on each row: h = (v − base_y)/sy, ≥ 0."""
    rows = np.arange(shape[0], dtype=np.float32)
    h = np.maximum((rows - base_y) / sy, 0.0)
    return np.broadcast_to(h[:, None], shape)


def fast_gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide ones run on a downsampled copy (smooth result, ~f² cheaper)."""
    import cv2

    f = int(min(4, sigma // DOWNSAMPLE_SIGMA)) if sigma >= DOWNSAMPLE_SIGMA else 1
    if f <= 1:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / f)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def variable_blur(mask: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Blur ``mask`` with a per-pixel Gaussian sigma (blend of a few blur levels)."""

    lo, hi = 0.3, max(float(sigma.max()), 0.6)
    levels = np.geomspace(lo, hi, BLUR_LEVELS).astype(np.float32)
    stack = np.stack([fast_gaussian(mask, float(s)) for s in levels])
    pos = np.interp(np.clip(sigma, lo, hi), levels, np.arange(BLUR_LEVELS, dtype=np.float32))
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, BLUR_LEVELS - 2)
    t = (pos - i0).astype(np.float32)
    a = np.take_along_axis(stack, i0[None], 0)[0]
    b = np.take_along_axis(stack, (i0 + 1)[None], 0)[0]
    return a * (1.0 - t) + b * t


def extrude_depth(mask: np.ndarray, depth_px: int) -> np.ndarray:
    """Give a flat silhouette's shadow a footprint: the union of copies shifted up to
    ``depth_px`` rows back (a solid object's slices behind its front contact row)."""
    import cv2

    if depth_px <= 1:
        return mask
    kernel = np.ones((int(depth_px), 1), np.uint8)
    return cv2.dilate(mask, kernel, anchor=(0, 0))


def cast_shadow(
    alpha: np.ndarray, base_y: int, light: Light, fade: float = 0.35, depth_px: int = 0
) -> np.ndarray:
    """Occlusion (0..1, H×W) of one light: projected silhouette with growing penumbra.

    ``fade`` lightens the far end (fill light reaches it; the umbra thins out);
    ``depth_px`` is the object's footprint depth in image rows (0 = a flat cut-out).
    """
    proj = extrude_depth(project_silhouette(alpha, base_y, light.sx, light.sy), depth_px)
    h = height_above_contact(alpha.shape, base_y, light.sy)
    sigma = 0.4 + light.softness * h
    soft = variable_blur(proj, sigma)
    obj_h = max(float(base_y - np.argmax(alpha.max(axis=1) > 0.05)), 1.0)
    far = np.clip(h / obj_h, 0.0, 1.5)
    return np.clip(soft * (1.0 - fade * far / 1.5), 0.0, 1.0)


def contact_occlusion(alpha: np.ndarray, base_y: int, reach: float = 0.1) -> np.ndarray:
    """Ambient-occlusion blob at the base: the silhouette squashed onto the ground line
    (in front and behind), blurred by a fraction of the object height."""

    rows = np.nonzero(alpha.max(axis=1) > 0.05)[0]
    obj_h = float(base_y - rows[0]) if len(rows) else 1.0
    front = project_silhouette(alpha, base_y, 0.0, reach)
    back = project_silhouette(alpha, base_y, 0.0, -reach * 0.6)
    blob = np.maximum(front, back)
    sigma = max(0.8, 0.03 * obj_h)
    return np.clip(fast_gaussian(blob, sigma) * 1.3, 0.0, 1.0)


def shadow_tint(rng: np.random.Generator) -> np.ndarray:
    """Per-channel share of the darkening: grey, cool (blue sky fill) or warm (indoor)."""
    kind = rng.choice(["grey", "cool", "warm"], p=[0.5, 0.38, 0.12])
    if kind == "cool":  # sky light fills the shadow: blue is darkened least
        t = np.array([1.0, rng.uniform(0.9, 0.97), rng.uniform(0.72, 0.88)])
    elif kind == "warm":
        t = np.array([rng.uniform(0.8, 0.92), rng.uniform(0.9, 0.97), 1.0])
    else:
        t = np.ones(3)
    return t.astype(np.float32)


def object_attenuation(
    alpha: np.ndarray,
    base_y: int,
    lights: list[Light],
    tint: np.ndarray,
    contact_strength: float,
    depth_px: int = 0,
) -> np.ndarray:
    """Attenuation S (H×W×3) of one object: cast shadows of every light and contact AO."""
    occl = np.zeros(alpha.shape, np.float32)
    for light in lights:
        occl += light.strength * cast_shadow(alpha, base_y, light, depth_px=depth_px)
    occl = np.clip(occl, 0.0, 0.95)
    ao = contact_strength * contact_occlusion(alpha, base_y)
    s = (1.0 - occl[..., None] * tint) * (1.0 - ao[..., None] * (0.5 + 0.5 * tint))
    return np.clip(s, 0.0, 1.0).astype(np.float32)
