"""A small ray tracer for rendered scenes: a pinhole camera, analytic solids standing on
the ground, and how much of an area light (the sun) and of the sky a surface point sees
past one solid. :mod:`liwi.synth.render` builds layered samples with it.

Everything is numpy on arrays of rays: ``o`` (N×3 or 3) origins, ``d`` N×3 unit
directions. A solid answers the distance to its surface along each ray (``inf`` for a
miss) and, for points on its surface, normals and texture coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-4  # ray offset off a surface, world units (scenes are a few units across)
CHUNK = 8192  # receiver points per visibility batch (× directions rays in memory)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera; ``rays`` answers one ray per pixel centre, row-major."""

    eye: np.ndarray
    forward: np.ndarray
    right: np.ndarray
    up: np.ndarray
    tan_half: float  # tan(vertical field of view / 2)

    @classmethod
    def looking_at(
        cls, target: np.ndarray, distance: float, pitch_deg: float, yaw_deg: float, fov_deg: float
    ) -> Camera:
        """A level camera ``distance`` from ``target``, looking down at ``pitch_deg``."""
        p, y = np.radians(pitch_deg), np.radians(yaw_deg)
        forward = np.array([np.sin(y) * np.cos(p), -np.sin(p), np.cos(y) * np.cos(p)])
        right = _unit(np.cross([0.0, 1.0, 0.0], forward))
        up = np.cross(forward, right)
        eye = np.asarray(target, float) - distance * forward
        return cls(eye, forward, right, up, float(np.tan(np.radians(fov_deg) / 2)))

    @property
    def level_forward(self) -> np.ndarray:
        """The viewing direction flattened onto the floor (unit)."""
        return _unit(np.array([self.forward[0], 0.0, self.forward[2]]))

    def rays(self, size: int) -> np.ndarray:
        """size²×3 unit directions through the pixel centres of a size×size image."""
        c = (np.arange(size) + 0.5) / size * 2 - 1
        ys, xs = np.meshgrid(-c, c, indexing="ij")
        d = (
            self.forward[None, None]
            + (xs * self.tan_half)[..., None] * self.right
            + (ys * self.tan_half)[..., None] * self.up
        )
        return _unit(d.reshape(-1, 3))


@dataclass(frozen=True)
class Plane:
    """An infinite plane ``n·x = offset``; texture coordinates along ``u_axis``/``v_axis``."""

    normal: np.ndarray
    offset: float
    u_axis: np.ndarray
    v_axis: np.ndarray

    def distance(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        den = d @ self.normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.offset - np.asarray(o) @ self.normal) / den
        return np.where((t > EPS) & (den < 0), t, np.inf)  # seen from the front only

    def uv(self, p: np.ndarray) -> np.ndarray:
        return np.stack([p @ self.u_axis, p @ self.v_axis], axis=-1)


def sphere_distance(o: np.ndarray, d: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Distance along each ray to the sphere (``centre``, ``radius``); from inside, to its
    far side; ``inf`` for a miss."""
    oc = np.asarray(o) - centre
    b = np.sum(oc * d, axis=-1)
    disc = b * b - (np.sum(oc * oc, axis=-1) - radius**2)
    root = np.sqrt(np.maximum(disc, 0.0))
    t = np.where(-b - root > EPS, -b - root, -b + root)
    return np.where((disc >= 0) & (t > EPS), t, np.inf)


@dataclass(frozen=True)
class Sphere:
    """A ball resting on the ground (centre at height ``radius``)."""

    x: float
    z: float
    radius: float
    kind: str = "sphere"

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x, self.radius, self.z])

    @property
    def bound(self) -> float:
        return self.radius

    def distance(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        return sphere_distance(o, d, self.centre, self.radius)

    def surface(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = _unit(p - self.centre)
        u = np.arctan2(n[:, 2], n[:, 0]) / (2 * np.pi) + 0.5
        v = np.arccos(np.clip(n[:, 1], -1, 1)) / np.pi
        return n, np.stack([u, v], axis=-1)


@dataclass(frozen=True)
class Cylinder:
    """An upright cylinder standing on the ground."""

    x: float
    z: float
    radius: float
    height: float
    kind: str = "cylinder"

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x, self.height / 2, self.z])

    @property
    def bound(self) -> float:
        return float(np.hypot(self.radius, self.height / 2))

    def distance(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        o = np.broadcast_to(np.asarray(o, float), d.shape)
        ox, oy, oz = o[:, 0] - self.x, o[:, 1], o[:, 2] - self.z
        dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
        a = np.maximum(dx * dx + dz * dz, 1e-12)
        b = ox * dx + oz * dz
        c = ox * ox + oz * oz - self.radius**2
        disc = b * b - a * c
        root = np.sqrt(np.maximum(disc, 0.0))
        best = np.full(len(d), np.inf)
        for t in ((-b - root) / a, (-b + root) / a):
            y = oy + t * dy
            ok = (disc >= 0) & (t > EPS) & (y >= 0) & (y <= self.height)
            best = np.where(ok & (t < best), t, best)
        with np.errstate(divide="ignore", invalid="ignore"):
            for level in (0.0, self.height):  # the caps
                t = (level - oy) / dy
                px, pz = ox + t * dx, oz + t * dz
                ok = (t > EPS) & (px * px + pz * pz <= self.radius**2)
                best = np.where(ok & (t < best), t, best)
        return best

    def surface(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lx, lz = p[:, 0] - self.x, p[:, 2] - self.z
        top = p[:, 1] > self.height - 1e-3
        side = np.stack([lx, np.zeros_like(lx), lz], axis=-1) / self.radius
        n = np.where(top[:, None], np.array([0.0, 1.0, 0.0]), side)
        u = np.where(top, lx / (2 * self.radius) + 0.5, np.arctan2(lz, lx) / (2 * np.pi) + 0.5)
        v = np.where(top, lz / (2 * self.radius) + 0.5, 1 - p[:, 1] / self.height)
        return _unit(n), np.stack([u, v], axis=-1)


@dataclass(frozen=True)
class Box:
    """A box standing on the ground, turned ``yaw`` radians about the vertical."""

    x: float
    z: float
    half: tuple[float, float, float]  # half extents along its own x, y, z
    yaw: float
    kind: str = "box"

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x, self.half[1], self.z])

    @property
    def bound(self) -> float:
        return float(np.linalg.norm(self.half))

    def _axes(self) -> np.ndarray:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])  # rows: local axes

    def distance(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        axes, half = self._axes(), np.array(self.half)
        lo = (np.asarray(o) - self.centre) @ axes.T
        ld = d @ axes.T
        ld = np.where(np.abs(ld) < 1e-12, 1e-12, ld)
        t0, t1 = (-half - lo) / ld, (half - lo) / ld
        near = np.minimum(t0, t1).max(axis=-1)
        far = np.maximum(t0, t1).min(axis=-1)
        t = np.where(near > EPS, near, far)
        return np.where((far >= near) & (t > EPS), t, np.inf)

    def surface(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        axes, half = self._axes(), np.array(self.half)
        q = (p - self.centre) @ axes.T / half  # −1…1 inside
        face = np.abs(q).argmax(axis=-1)
        n_local = np.zeros_like(q)
        n_local[np.arange(len(q)), face] = np.sign(q[np.arange(len(q)), face])
        # the two coordinates across the face, 0…1
        other = np.array([[2, 1], [0, 2], [0, 1]])[face]
        uv = (np.take_along_axis(q, other, axis=-1) + 1) / 2
        return n_local @ axes, uv


Solid = Sphere | Cylinder | Box


def fibonacci_sphere(n: int) -> np.ndarray:
    """n unit directions spread evenly over the sphere."""
    i = np.arange(n) + 0.5
    y = 1 - 2 * i / n
    r = np.sqrt(1 - y * y)
    phi = np.pi * (3 - np.sqrt(5)) * i
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=-1)


def cone_directions(axis: np.ndarray, radius_rad: float, n: int, rng) -> np.ndarray:
    """n unit directions spread evenly (a golden-angle spiral, randomly turned) inside the
    cone of half-angle ``radius_rad`` around ``axis``; any stride through them is spread too."""
    axis = _unit(np.asarray(axis, float))
    u = (np.arange(n) + 0.5) / n
    cos_t = 1 - u * (1 - np.cos(radius_rad))
    sin_t = np.sqrt(1 - cos_t**2)
    phi = np.arange(n) * np.pi * (3 - np.sqrt(5)) + rng.random() * 2 * np.pi
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = _unit(np.cross(axis, helper))
    e2 = np.cross(axis, e1)
    return (
        cos_t[:, None] * axis
        + (sin_t * np.cos(phi))[:, None] * e1
        + (sin_t * np.sin(phi))[:, None] * e2
    )


def _clear(solid: Solid, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Whether each ray misses ``solid``; only rays that meet its bounding sphere are traced
    against the solid itself (most sky rays do not: the same answer, a few times sooner)."""
    if isinstance(solid, Sphere):  # its own bounding sphere
        return np.isinf(solid.distance(o, d))
    near = np.isfinite(sphere_distance(o, d, solid.centre, solid.bound))
    clear = np.ones(len(d), bool)
    if near.any():
        clear[near] = np.isinf(solid.distance(o[near], d[near]))
    return clear


def visibility(
    points: np.ndarray,
    normals: np.ndarray,
    solid: Solid,
    sun: np.ndarray,
    sky: np.ndarray,
    rng: np.random.Generator,
    rays: tuple[int, int] = (24, 64),
    sky_reach: tuple[float, float] = (2.5, 5.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Share of the sun's disc and of the cosine-weighted sky each point sees past ``solid``.

    ``sun`` and ``sky`` are pools of evenly spread directions (the sun's disc; the whole
    sphere); each point traces its own stride through them (``rays`` = sun, sky rays per
    point), so neighbours sample different directions and a few rays give smooth noise
    instead of the solid's copies. Points whose sun rays all pass clear of the solid's
    bounding sphere see all the sun; the sky the solid hides fades to none between
    ``sky_reach`` bounding radii from its centre (beyond, it is under 3 % of the sky).
    """
    n = len(points)
    vis_sun, vis_sky = np.ones(n), np.ones(n)
    centre, bound = solid.centre, solid.bound
    axis = _unit(sun.mean(axis=0))
    spread = float(np.max(np.arccos(np.clip(sun @ axis, -1, 1))))
    rel = centre - points
    along = rel @ axis
    perp = np.linalg.norm(rel - along[:, None] * axis, axis=-1)
    reach = np.linalg.norm(rel, axis=-1) / bound
    near_sun = (along > -bound) & (perp < bound + np.abs(along) * np.tan(spread) + EPS)
    jobs = (
        (np.flatnonzero(near_sun), sun, rays[0], vis_sun, False),
        (np.flatnonzero(reach < sky_reach[1]), sky, rays[1], vis_sky, True),
    )
    for idx, pool, k, out, cosine in jobs:
        stride = max(1, len(pool) // k)
        for s in range(0, len(idx), CHUNK):
            ids = idx[s : s + CHUNK]
            pick = rng.integers(0, stride, len(ids))[:, None] + np.arange(k) * stride
            dirs = pool[np.minimum(pick, len(pool) - 1)]  # len(ids) × k × 3
            p = points[ids] + normals[ids] * EPS * 10
            o = np.repeat(p, k, axis=0)
            clear = _clear(solid, o, dirs.reshape(-1, 3)).reshape(len(ids), k)
            cos = np.einsum("nkc,nc->nk", dirs, normals[ids])
            w = np.maximum(cos, 0.0) if cosine else (cos > 0).astype(float)
            out[ids] = (w * clear).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9)
    fade = np.clip((sky_reach[1] - reach) / (sky_reach[1] - sky_reach[0]), 0.0, 1.0)
    vis_sky = 1.0 - fade * (1.0 - vis_sky)
    return vis_sun, vis_sky
