"""Rendered layered samples: solids on a photo-textured floor, lit by a soft sun and the sky.

Where :mod:`liwi.synth.generator` pastes flat objects and draws their shadows in 2-D,
this module ray-traces a small 3-D scene (:mod:`liwi.synth.raytrace`): a ground plane
(and often a back wall) textured with a background photo, one or two spheres, boxes or
cylinders textured with other photos or painted one colour, a sun of a few degrees' width
(penumbrae widen with distance from the contact) and a sky (contact occlusion). The
shadow each solid casts is exact: the light its receivers lose to that solid, on the
floor, the wall and on the solids behind it, under the solid too. The layers are
rendered separately (each solid whole, 2 × 2 supersampled for its alpha), and the image
is their composite, so the stack recomposes to the clean image exactly. Not modelled:
inter-reflections, and shadows a solid casts on a solid *in front* of it (the layer
model has no place for them; the sun is free to make them, so they are left out).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from liwi.layers import LayerStack
from liwi.synth.backgrounds import Photo, colour_jitter
from liwi.synth.degrade import degrade
from liwi.synth.generator import SampleSpec, SynthSample
from liwi.synth.generator import spec_from_trace as _spec_from_trace
from liwi.synth.raytrace import (
    Box,
    Camera,
    Cylinder,
    Plane,
    Solid,
    Sphere,
    cone_directions,
    fibonacci_sphere,
    visibility,
)

RENDER_VERSION = "liwi.render/1"  # bump when the same spec would give different pixels
SUPERSAMPLE = 2  # primary rays per pixel side (alpha edges, texture)
SUN_RAYS = 24  # directions inside the sun's disc per receiver point
SKY_RAYS = 64  # directions over the sphere per receiver point (about half above its surface)
POOL = 32  # each point's rays are one of POOL strides through POOL × as many directions
LAYOUT_TRIES = 40  # re-draws of the solids' places before giving up on a spec
MIN_AREA, MAX_AREA = 0.01, 0.35  # a solid's image share, whole (amodal)
MIN_VISIBLE = 0.4  # share of a solid's silhouette the solids in front may hide, at most 1 − this


def _texture(tex: np.ndarray, uv: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``tex`` sampled bilinear at ``uv`` (…×2, one texture = 0…1, mirrored beyond)."""
    import cv2

    h, w = tex.shape[:2]
    m = np.mod(uv, 2.0)
    m = np.where(m > 1.0, 2.0 - m, m)
    mx = (m[..., 0] * (w - 1)).reshape(shape).astype(np.float32)
    my = (m[..., 1] * (h - 1)).reshape(shape).astype(np.float32)
    out = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 3)


def _photo_texture(rng: np.random.Generator, photo: Photo, side: int = 512) -> np.ndarray:
    """A jittered square crop of ``photo`` (at most ``side`` px) as a texture."""
    import cv2

    px = photo.pixels
    h, w = px.shape[:2]
    s = int(rng.uniform(0.5, 1.0) * min(h, w))
    y0, x0 = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
    crop = cv2.resize(
        px[y0 : y0 + s, x0 : x0 + s], (min(side, s),) * 2, interpolation=cv2.INTER_AREA
    )
    return colour_jitter(rng, np.ascontiguousarray(crop))[0]


def _draw_solid(rng: np.random.Generator, camera: Camera, span: float) -> Solid:
    """One solid at a random place of the floor around the camera's target (the origin;
    ``span`` = the view's width there)."""
    along = camera.level_forward
    spot = rng.uniform(-0.3, 0.3) * span * camera.right + rng.uniform(-0.25, 0.2) * span * along
    r = float(rng.uniform(0.07, 0.16) * span)  # footprint radius, world units
    kind = rng.choice(["sphere", "box", "cylinder"])
    if kind == "sphere":
        return Sphere(float(spot[0]), float(spot[2]), r)
    if kind == "cylinder":
        return Cylinder(float(spot[0]), float(spot[2]), r, float(r * rng.uniform(0.6, 3.0)))
    half = (r * rng.uniform(0.5, 1.0), r * rng.uniform(0.4, 1.6), r * rng.uniform(0.5, 1.0))
    return Box(
        float(spot[0]), float(spot[2]), tuple(float(v) for v in half), float(rng.uniform(0, np.pi))
    )


def _layout(
    rng: np.random.Generator, camera: Camera, n: int, dirs: np.ndarray, size: int, wall: float
) -> tuple[list[Solid], list[np.ndarray]] | None:
    """Solids back to front and their hit distances (per supersampled ray), or None.
    ``wall``: how far beyond the origin the back wall stands (inf: none)."""
    span = 2 * camera.tan_half * float(np.linalg.norm(camera.eye))
    back = camera.level_forward
    for _ in range(LAYOUT_TRIES):
        solids = []
        for _ in range(n):
            s = _draw_solid(rng, camera, span)
            apart = all(np.hypot(s.x - o.x, s.z - o.z) > 1.1 * (s.bound + o.bound) for o in solids)
            if apart and s.centre @ back + s.bound < wall - 0.05:
                solids.append(s)
        if len(solids) < n:
            continue
        solids.sort(key=lambda s: -float(np.linalg.norm(s.centre - camera.eye)))  # back first
        hits = [s.distance(camera.eye, dirs) for s in solids]
        grids = [np.isfinite(t).reshape(size, size) for t in hits]
        areas = [g.mean() for g in grids]
        on_border = any(g[0].any() or g[-1].any() or g[:, 0].any() or g[:, -1].any() for g in grids)
        if on_border or not all(MIN_AREA <= a <= MAX_AREA for a in areas):
            continue
        ok = True
        for i in range(n):  # the later (front) solid must be the nearer wherever both are hit
            for j in range(i + 1, n):
                both = np.isfinite(hits[i]) & np.isfinite(hits[j])
                if both.any() and np.mean(hits[j][both] > hits[i][both] + 1e-6) > 0.005:
                    ok = False
            hidden = np.zeros(len(dirs), bool)
            for j in range(i + 1, n):
                hidden |= np.isfinite(hits[j])
            seen = np.isfinite(hits[i])
            if (seen & ~hidden).sum() < MIN_VISIBLE * seen.sum():
                ok = False
        if ok:
            return solids, hits
    return None


def _down(x: np.ndarray, size: int, k: int) -> np.ndarray:
    """Mean over k×k blocks: (size·k)² × C rows → size × size × C."""
    c = x.shape[-1]
    return x.reshape(size, k, size, k, c).mean(axis=(1, 3))


def render(spec: SampleSpec, photos: list[Photo], draws: int = 8) -> SynthSample:
    """Render the sample described by ``spec`` (the floor, wall and solids from ``photos``).

    A spec whose random scene leaves no room for its solids is drawn again from the same
    stream (at most ``draws`` scenes), so the result is still a function of the spec.
    """
    if spec.n_objects < 1:
        raise ValueError(f"n_objects must be ≥ 1, got {spec.n_objects}")
    rng = spec.rng()
    size, k = spec.size, SUPERSAMPLE
    big = size * k
    for _ in range(draws):
        fov = float(rng.uniform(40, 60))  # vertical field of view, degrees
        wall = bool(rng.random() < 0.5)  # a back wall: the view may rise above the floor
        low = 10.0 if wall else fov / 2 + 2  # without a wall the floor fills the frame
        pitch = float(rng.uniform(low, max(low + 5, 62)))  # degrees below the horizon
        distance, yaw = float(rng.uniform(4, 7)), float(rng.uniform(0, 360))
        camera = Camera.looking_at(np.zeros(3), distance, pitch, yaw, fov)
        wall_at = float(rng.uniform(1.2, 2.5)) if wall else np.inf  # beyond the origin
        dirs = camera.rays(big)
        placed = _layout(rng, camera, spec.n_objects, dirs, big, wall_at)
        if placed is not None:
            break
    else:
        raise ValueError(f"no room for {spec.n_objects} solids in {draws} scenes of {spec}")
    solids, hits = placed

    # Light: a warm sun of a few degrees and a bluish sky; the floor's unshadowed light = 1.
    elevation = np.radians(rng.uniform(25, 70))
    azimuth = np.radians(rng.uniform(0, 360))
    sun_dir = np.array(
        [
            np.cos(elevation) * np.sin(azimuth),
            np.sin(elevation),
            np.cos(elevation) * np.cos(azimuth),
        ]
    )
    sun_radius = float(rng.uniform(0.5, 8.0))  # angular radius, degrees: the penumbra
    ratio = float(rng.uniform(1.2, 5.0))  # sun ÷ sky light on the floor: how dark shadows are
    sun_c = np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.75, 0.95)])
    sky_c = np.array([rng.uniform(0.7, 0.9), rng.uniform(0.8, 0.95), 1.0])
    sun_c *= ratio / (sun_c.mean() * sun_dir[1])  # so sun·cos ÷ sky = ratio on the floor
    sky_c /= sky_c.mean()
    scale = 1.0 / (sun_c * sun_dir[1] + sky_c).mean()
    sun_c, sky_c = sun_c * scale, sky_c * scale
    sun = cone_directions(sun_dir, np.radians(sun_radius), SUN_RAYS * POOL, rng)
    sky = fibonacci_sphere(SKY_RAYS * POOL)
    rays = (SUN_RAYS, SKY_RAYS)

    # Floor and wall: photo-textured planes (texture spans in world units).
    names = [p.name for p in photos]
    floor_i = int(rng.integers(len(photos)))
    floor_tex = _photo_texture(rng, photos[floor_i])
    floor = Plane(np.array([0.0, 1.0, 0.0]), 0.0, np.array([1.0, 0, 0]), np.array([0, 0, 1.0]))
    floor_span = float(rng.uniform(3.0, 8.0))  # world units one texture spans
    planes = [(floor, floor_tex, floor_span)]
    wall_i = None
    if wall:
        back = camera.level_forward
        right = np.cross([0.0, 1.0, 0.0], back)
        wall_i = int(rng.integers(len(photos)))
        planes.append(
            (
                Plane(-back, -wall_at, right, np.array([0, -1.0, 0])),
                _photo_texture(rng, photos[wall_i]),
                float(rng.uniform(3.0, 8.0)),
            )
        )

    def light(n: np.ndarray, vis_sun: np.ndarray, vis_sky: np.ndarray, plane: bool) -> np.ndarray:
        """Light reaching points of normal ``n`` that see the given shares of sun and sky."""
        cos = np.maximum(n @ sun_dir, 0.0)[:, None]
        sky_share = np.ones((len(n), 1)) if plane else ((1 + n[:, 1:2]) / 2)
        return sun_c * cos * vis_sun[:, None] + sky_c * sky_share * vis_sky[:, None]

    def at_centres(x: np.ndarray) -> np.ndarray:
        """The supersampled rows at the pixel centres' nearest sample (k×k → one)."""
        return x.reshape(size, k, size, k, -1)[:, k // 2, :, k // 2].reshape(size * size, -1)

    # The background: the nearest plane along every ray, lit without the solids.
    t_planes = np.stack([pl.distance(camera.eye, dirs) for pl, _, _ in planes])
    which = t_planes.argmin(axis=0)
    t_bg = t_planes.min(axis=0)
    if not np.isfinite(t_bg).all():  # cannot happen with the pitch limits above
        raise ValueError(f"rays miss every plane in the scene of {spec}")
    p_bg = camera.eye + t_bg[:, None] * dirs
    bg_big = np.zeros((len(dirs), 3))
    n_bg = np.zeros((len(dirs), 3))
    for i, (pl, tex, span) in enumerate(planes):
        sel = which == i
        n_bg[sel] = pl.normal
        colour = _texture(tex, pl.uv(p_bg) / span, (big, big))
        lit = light(
            np.broadcast_to(pl.normal, (len(dirs), 3)), np.ones(len(dirs)), np.ones(len(dirs)), True
        )
        bg_big[sel] = (colour * lit)[sel]
    background = np.clip(_down(bg_big, size, k), 0, 1)

    # Each solid alone, whole: alpha, colour (its own shading), surface points at centres.
    colours, alphas, surfaces, looks = [], [], [], []
    for s, t in zip(solids, hits, strict=True):
        hit = np.isfinite(t)
        p = camera.eye + np.where(hit, t, 0.0)[:, None] * dirs
        n, uv = s.surface(p)
        if rng.random() < 0.6:
            src = int(rng.integers(len(photos)))
            albedo = _texture(_photo_texture(rng, photos[src], 256), uv, (big, big))
            look = {"texture": names[src]}
        else:
            paint = rng.uniform(0.05, 0.95, size=3)
            albedo = np.broadcast_to(paint, (len(dirs), 3))
            look = {"paint": [float(v) for v in paint]}
        own = light(n, np.ones(len(n)), np.ones(len(n)), False)
        bounce = 0.3 * ((1 - n[:, 1:2]) / 2) * background.mean()  # light off the floor
        rgb = np.where(hit[:, None], albedo * (own + bounce), 0.0)
        a = _down(hit[:, None].astype(float), size, k)[..., 0]
        premult = _down(rgb, size, k)
        colours.append(np.clip(premult / np.maximum(a, 1e-6)[..., None], 0, 1))
        alphas.append(a)
        surfaces.append((at_centres(hit[:, None])[:, 0], at_centres(p), at_centres(n)))
        looks.append(look)

    # Each solid's shadow on what lies below its layer: the planes and the solids behind it.
    p_floor, n_floor = at_centres(p_bg), at_centres(n_bg)
    base_light = light(n_floor, np.ones(len(p_floor)), np.ones(len(p_floor)), True)
    attenuations = []
    for i, s in enumerate(solids):
        vs, vk = visibility(p_floor, n_floor, s, sun, sky, rng, rays)
        att = light(n_floor, vs, vk, True) / np.maximum(base_light, 1e-6)
        for j in range(i):  # solids behind it, in compositing order, by their alpha
            hit_j, p_j, n_j = surfaces[j]
            if not hit_j.any():
                continue
            vs, vk = visibility(p_j[hit_j], n_j[hit_j], s, sun, sky, rng, rays)
            on = light(n_j[hit_j], vs, vk, False) / np.maximum(
                light(n_j[hit_j], np.ones(hit_j.sum()), np.ones(hit_j.sum()), False), 1e-6
            )
            a_j = alphas[j].reshape(-1)[hit_j, None]
            att[hit_j] = a_j * on + (1 - a_j) * att[hit_j]
        attenuations.append(np.clip(att, 0, 1).reshape(size, size, 3).astype(np.float32))

    stack = LayerStack.from_arrays(
        background.astype(np.float32),
        [c.astype(np.float32) for c in colours],
        [a.astype(np.float32) for a in alphas],
        attenuations,
        labels=[s.kind for s in solids],
    )
    clean = stack.composite()
    image, ext, degradation = degrade(rng, clean)
    params = {
        "camera": {
            "eye": [float(v) for v in camera.eye],
            "distance": distance,
            "pitch_deg": pitch,
            "yaw_deg": yaw,
            "fov_deg": fov,
        },
        "sun": {
            "elevation_deg": float(np.degrees(elevation)),
            "azimuth_deg": float(np.degrees(azimuth)),
            "radius_deg": sun_radius,
            "sun_to_sky": ratio,
        },
        "floor": {"photo": names[floor_i], "span": floor_span},
        "wall": {"photo": names[wall_i]} if wall_i is not None else None,
        "objects": [{**asdict(s), **look} for s, look in zip(solids, looks, strict=True)],
        "degradation": degradation,
    }
    stack.meta = {"generator": RENDER_VERSION, "spec": asdict(spec)}
    return SynthSample(
        spec, stack, clean, image, ext, params, degradation, "synth.render", RENDER_VERSION
    )


def spec_from_trace(agent_trace: list[dict]) -> SampleSpec:
    """The :class:`SampleSpec` of a rendered row's ``agent_trace`` (parsed JSON)."""
    return _spec_from_trace(agent_trace, "synth.render", RENDER_VERSION)
