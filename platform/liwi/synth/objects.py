"""Foreground objects with true alpha, standing on the ground line.

An object is built in a local box (silhouette × colour × shading), then pasted into the
full canvas so that its lowest opaque row sits on the contact row ``base_y``. Colour is
defined wherever alpha > 0 (hair strands included), so the layer needs no decontamination.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from liwi.synth import shapes, textures
from liwi.synth.backgrounds import Photo

# Probability of each object kind: procedural textured shape vs. a cut-out of another photo.
KIND_PROBS = {"textured": 0.55, "cutout": 0.45}
HAIR_PROB = 0.3  # chance an object gets fur/hair strands on its boundary
# Outlines for photo cut-outs (soft organic ones mostly; "box" shows the patch's corners).
CUTOUT_SHAPES = {"blob": 0.3, "box": 0.1, "rock": 0.2, "vessel": 0.25, "silhouette": 0.15}


@dataclass
class SceneObject:
    """Full-canvas colour and alpha of one object plus where it touches the ground."""

    color: np.ndarray  # H×W×3 float32
    alpha: np.ndarray  # H×W float32
    base_y: int  # contact row (lowest opaque row) in canvas pixels
    label: str
    params: dict = field(default_factory=dict)


def shading(
    mask: np.ndarray, light: np.ndarray, ambient: float, bulge: float, shininess: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lambertian shade and Blinn-Phong highlight of a dome-like relief built from the
    mask's distance transform; pixels off the body get the body's typical shade.

    ``light`` is a unit vector (x right, y down, z towards the camera) pointing to the light.
    """
    import cv2

    binary = (mask > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
    z = np.sqrt(dist / max(float(dist.max()), 1.0)) * bulge * max(mask.shape)
    z = cv2.GaussianBlur(z, (0, 0), max(1.5, 0.06 * max(mask.shape)))  # no medial ridge
    gy, gx = np.gradient(z)
    n = np.stack([-gx, -gy, np.ones_like(z)], axis=2)
    n /= np.linalg.norm(n, axis=2, keepdims=True)
    light = light.astype(np.float32)
    diffuse = np.clip(n @ light, 0.0, 1.0)
    shade = (ambient + (1.0 - ambient) * diffuse).astype(np.float32)
    half = light + np.array([0.0, 0.0, 1.0], np.float32)  # towards light + towards camera
    half /= np.linalg.norm(half)
    spec = np.clip(n @ half, 0.0, 1.0) ** shininess
    body = binary > 0
    if body.any():  # the brightest 10 % of the body keeps the texture's own value
        shade /= max(float(np.percentile(shade[body], 90)), 1e-3)
        shade[~body] = float(np.median(shade[body]))  # hair/fringe: typical body shade
    spec[~body] = 0.0
    return shade, spec.astype(np.float32)


def harmonize(
    color: np.ndarray, alpha: np.ndarray, background: np.ndarray, amount: float = 0.35
) -> np.ndarray:
    """Pull an object's exposure and colour cast part-way towards the scene's.

    Objects pasted from elsewhere look stuck on when their brightness and white balance
    ignore the scene; real objects share its illuminant.
    """
    inside = alpha > 0.5
    if not inside.any():
        return color
    obj_mean = color[inside].mean(axis=0) + 1e-3
    bg_mean = background.reshape(-1, 3).mean(axis=0) + 1e-3
    gain = np.clip((bg_mean.mean() / obj_mean.mean()) ** amount, 0.7, 1.4)
    cast = (bg_mean / bg_mean.mean()) ** amount  # the scene's white balance, softened
    out = np.clip(color * gain * cast, 0.0, 1.0).astype(np.float32)
    out[alpha <= 0] = 0.0
    return out


def paste(
    color: np.ndarray, alpha: np.ndarray, canvas: tuple[int, int], centre_x: float, base_y: int
) -> tuple[np.ndarray, np.ndarray]:
    """Full-canvas colour and alpha of a local box whose last row lands on ``base_y``,
    centred at ``centre_x``, clipped to the canvas; colour is zero where alpha is."""
    ch, cw = canvas
    bh, bw = alpha.shape
    top = base_y - (bh - 1)
    left = int(round(centre_x - bw / 2))
    full_c = np.zeros((ch, cw, 3), np.float32)
    full_a = np.zeros((ch, cw), np.float32)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + bh, ch), min(left + bw, cw)
    if y1 > y0 and x1 > x0:
        full_a[y0:y1, x0:x1] = alpha[y0 - top : y1 - top, x0 - left : x1 - left]
        full_c[y0:y1, x0:x1] = color[y0 - top : y1 - top, x0 - left : x1 - left]
    full_c[full_a <= 0] = 0.0
    return full_c, full_a


def build_object(
    rng: np.random.Generator,
    canvas: tuple[int, int],
    centre_x: float,
    base_y: int,
    height: int,
    photos: list[Photo],
    light: np.ndarray,
) -> SceneObject:
    """A random object of ``height`` pixels standing at (centre_x, base_y) in the canvas."""
    kind = str(rng.choice(list(KIND_PROBS), p=list(KIND_PROBS.values())))
    names = list(shapes.SHAPES) if kind == "textured" else list(CUTOUT_SHAPES)
    probs = None if kind == "textured" else list(CUTOUT_SHAPES.values())
    shape_name = str(rng.choice(names, p=probs))
    if shape_name == "silhouette":  # a real outline keeps its own proportions
        aspect = float(rng.uniform(1.0, 1.3))
    else:
        aspect = float(rng.uniform(0.4, 1.2))  # width / height
    h = max(8, int(height))
    w = max(8, int(h * aspect))
    hairy = bool(rng.random() < HAIR_PROB)
    hair_len = float(rng.uniform(0.06, 0.16) * h) if hairy else 0.0
    pad = int(np.ceil(hair_len)) + 3
    bh, bw = h + pad, w + 2 * pad

    sil = shapes.SHAPES[shape_name](rng, h, w)
    if kind == "textured":
        tex, tex_name = textures.procedural_texture(rng, bh, bw)
        source = {"texture": tex_name}
    else:
        photo = photos[int(rng.integers(len(photos)))]
        tex, region = textures.photo_patch(rng, photo.pixels, bh, bw)
        source = {"photo": photo.name, "region": region}

    alpha = np.zeros((bh, bw), np.float32)
    alpha[pad : pad + h, pad : pad + w] = sil  # ground row of the shape = last box row
    edge_sigma = float(rng.choice([rng.uniform(0.0, 0.6), rng.uniform(0.6, 1.8)], p=[0.7, 0.3]))
    alpha = shapes.soften(alpha, edge_sigma)
    body = alpha.copy()  # without hair: what the shading relief is built from
    if hairy:
        alpha = shapes.add_strands(rng, alpha, int(rng.integers(60, 260)), hair_len)
    translucency = 1.0 if rng.random() > 0.08 else float(rng.uniform(0.6, 0.9))
    alpha = np.clip(alpha * translucency, 0.0, 1.0)

    ambient = float(rng.uniform(0.35, 0.6))  # fill light on the object's dark side
    bulge = float(rng.uniform(0.05, 0.25))  # relief depth relative to the object size
    shininess = float(rng.uniform(8, 40))  # Blinn-Phong exponent: larger = tighter highlight
    gloss = float(rng.uniform(0.1, 0.35)) if kind == "textured" and rng.random() < 0.35 else 0.0
    shade, spec = shading(body, light, ambient, bulge, shininess)
    strength = 1.0 if kind == "textured" else 0.4  # photos already carry their own lighting
    color = tex * (1.0 + strength * (shade - 1.0))[..., None] + gloss * spec[..., None]
    color = np.clip(color, 0.0, 1.0)

    full_c, full_a = paste(color, alpha, canvas, centre_x, base_y)
    label = f"{kind}_{shape_name}" + ("_hairy" if hairy else "")
    params = {
        "kind": kind,
        "shape": shape_name,
        "source": source,
        "height": h,
        "width": w,
        "centre_x": float(centre_x),
        "base_y": int(base_y),
        "edge_sigma": edge_sigma,
        "hair_length": hair_len,
        "translucency": translucency,
        "ambient": ambient,
        "bulge": bulge,
        "shininess": shininess,
        "gloss": gloss,
    }
    return SceneObject(full_c, full_a, int(base_y), label, params)
