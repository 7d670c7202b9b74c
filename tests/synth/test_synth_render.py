"""Rendered scenes: the ray tracer's geometry and light, and layered samples that recompose."""

import json

import numpy as np
import pytest

from liwi.config import ConfigError
from liwi.imageio import decode_rgb
from liwi.schema import row_to_stack
from liwi.synth.backgrounds import load_photos
from liwi.synth.generator import SampleSpec
from liwi.synth.job import SynthConfig, run
from liwi.synth.raytrace import (
    Box,
    Camera,
    Cylinder,
    Sphere,
    cone_directions,
    fibonacci_sphere,
    visibility,
)
from liwi.synth.render import render, spec_from_trace
from liwi.table import read_table

DOWN = np.array([[0.0, -1.0, 0.0]])


@pytest.mark.parametrize(
    ("solid", "top"),
    [
        (Sphere(0.0, 0.0, 0.5), 1.0),
        (Cylinder(0.0, 0.0, 0.3, 0.8), 0.8),
        (Box(0.0, 0.0, (0.3, 0.6, 0.2), 0.7), 1.2),
    ],
)
def test_a_ray_from_above_meets_the_top_of_each_solid(solid, top):
    origin = np.array([0.0, 5.0, 0.0])
    t = solid.distance(origin, DOWN)
    assert t[0] == pytest.approx(5.0 - top, abs=1e-6)
    p = origin + t[:, None] * DOWN
    n, uv = solid.surface(p)
    assert np.allclose(n, [[0.0, 1.0, 0.0]], atol=1e-6)  # the top faces up
    assert np.isfinite(uv).all()
    # a ray beside the solid misses it
    assert np.isinf(solid.distance(np.array([3.0, 5.0, 0.0]), DOWN))[0]


@pytest.mark.parametrize(
    "solid",
    [Sphere(0.2, -0.1, 0.5), Cylinder(0.2, -0.1, 0.4, 1.0), Box(0.2, -0.1, (0.4, 0.5, 0.3), 0.4)],
)
def test_surface_normals_are_unit_and_point_outwards(solid):
    rng = np.random.default_rng(0)
    d = rng.standard_normal((500, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    o = solid.centre - 4.0 * d  # rays from all round, aimed through the centre
    t = solid.distance(o, d)
    assert np.isfinite(t).all()
    p = o + t[:, None] * d
    n, _ = solid.surface(p)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6)
    assert ((n * (p - solid.centre)).sum(axis=1) > 0).all()
    assert ((n * d).sum(axis=1) < 0).all()  # seen from outside: faces the ray


def test_the_sun_is_hidden_in_the_umbra_and_seen_far_away():
    rng = np.random.default_rng(1)
    ball = Sphere(0.0, 0.0, 0.5)
    sun_dir = np.array([0.6, 0.8, 0.0])  # 53° up
    sun = cone_directions(sun_dir, np.radians(1.0), 24 * 8, rng)
    sky = fibonacci_sphere(64 * 8)
    umbra = ball.centre - sun_dir * (ball.centre[1] / sun_dir[1])  # centre's shadow on the floor
    points = np.array([umbra, [-4.0, 0.0, 3.0], [0.0, 0.0, 0.55]])
    up = np.tile([0.0, 1.0, 0.0], (3, 1))
    vis_sun, vis_sky = visibility(points, up, ball, sun, sky, rng)
    assert vis_sun[0] == 0.0 and vis_sun[1] == 1.0
    assert vis_sky[1] == 1.0  # far away: the whole sky
    assert vis_sky[2] < 0.8  # beside the contact point: the ball hides much of it


def test_a_wider_sun_widens_the_penumbra():
    rng = np.random.default_rng(2)
    ball = Sphere(0.0, 0.0, 0.5)
    sun_dir = np.array([0.0, 0.7, 0.714])
    sky = fibonacci_sphere(64)
    xs = np.linspace(-1.5, 1.5, 301)
    shadow_z = -ball.centre[1] * sun_dir[2] / sun_dir[1]
    points = np.stack([xs, np.zeros_like(xs), np.full_like(xs, shadow_z)], axis=1)
    up = np.tile([0.0, 1.0, 0.0], (len(xs), 1))

    def penumbra(radius_deg: float) -> int:
        sun = cone_directions(sun_dir, np.radians(radius_deg), 24 * 32, rng)
        v, _ = visibility(points, up, ball, sun, sky, rng)
        return int(((v > 0.05) & (v < 0.95)).sum())

    assert penumbra(8.0) > 2 * max(penumbra(0.5), 1)


def test_camera_rays_run_row_major_from_the_top_left():
    cam = Camera.looking_at(np.zeros(3), 5.0, 30.0, 0.0, 50.0)
    d = cam.rays(4).reshape(4, 4, 3)
    assert np.allclose(np.linalg.norm(d, axis=2), 1.0)
    assert d[0, 0, 1] > d[3, 0, 1]  # the top row looks higher
    assert (d[0, 0] @ cam.right) < 0 < (d[0, 3] @ cam.right)  # left to right


@pytest.fixture(scope="module")
def photos():
    return load_photos()


@pytest.mark.parametrize("n_objects", [1, 2])
def test_a_rendered_sample_recomposes_and_regenerates(photos, n_objects):
    spec = SampleSpec(seed=3, index=n_objects, size=64, n_objects=n_objects)
    a = render(spec, photos)
    assert len(a.stack.objects) == n_objects
    # the encoded image is the (mildly degraded) composite of these layers, objects included
    image = decode_rgb(a.image)
    off_composite = np.abs(image - a.stack.composite()).mean()
    assert off_composite < 0.03
    assert np.abs(image - a.stack.background).mean() > 2 * off_composite
    for obj in a.stack.objects:
        assert 0.01 <= obj.alpha.mean() <= 0.35
        assert obj.alpha[0].max() == 0 and obj.alpha[:, -1].max() == 0  # inside the frame
        s = obj.attenuation
        assert s.min() < 0.5 and s.max() <= 1.0  # each solid casts a real shadow
    b = render(spec_from_trace(a.trace()), photos)
    assert np.array_equal(a.clean, b.clean)


def test_the_shadow_lies_away_from_the_sun(photos):
    """On the floor, from the solid's footprint to the centre of its shadow's darkening
    points away from the sun's azimuth. The attenuation map covers the floor behind the
    solid too, so every pixel counts, weighted by the floor area it sees."""
    checked = 0
    for i in range(40):
        s = render(SampleSpec(seed=5, index=i, size=96, n_objects=1), photos)
        if s.params["wall"] is not None:  # floor-only scenes: every pixel off the solid is floor
            continue
        cam = s.params["camera"]
        camera = Camera.looking_at(
            np.zeros(3), cam["distance"], cam["pitch_deg"], cam["yaw_deg"], cam["fov_deg"]
        )
        d = camera.rays(96)
        t = -camera.eye[1] / d[:, 1]
        p = camera.eye + t[:, None] * d  # the floor point of each pixel
        area = t**2 / np.abs(d[:, 1])  # floor area a pixel sees, up to a constant
        dark = (1.0 - s.stack.objects[0].attenuation.mean(axis=2)).reshape(-1) * area
        centre = (p[:, [0, 2]] * dark[:, None]).sum(axis=0) / dark.sum()
        footprint = np.array([s.params["objects"][0]["x"], s.params["objects"][0]["z"]])
        az = np.radians(s.params["sun"]["azimuth_deg"])
        away = -np.array([np.sin(az), np.cos(az)])
        assert np.dot(centre - footprint, away) > 0, f"sample {i}"
        checked += 1
        if checked == 4:
            break
    assert checked == 4


def test_the_synth_job_renders_a_table(tmp_path):
    config = SynthConfig(
        out=str(tmp_path), kind="render", n=4, layers=3, size=64, seed=2, progress=False
    )
    summary = run(config)
    assert sum(summary["splits"].values()) == 4
    rows = read_table(str(tmp_path / "table")).to_pylist()
    assert len(rows) == 4
    photos = load_photos()
    for row in rows:
        trace = json.loads(row["agent_trace"])
        assert trace[0]["tool"] == "synth.render"
        assert {"sun_elevation_deg", "sun_radius_deg", "sun_to_sky"} <= dict(row["scores"]).keys()
        clean = render(spec_from_trace(trace), photos).clean
        assert np.abs(row_to_stack(row).composite() - clean).mean() < 1 / 255


def test_rendering_takes_no_cutouts(tmp_path):
    with pytest.raises((ConfigError, ValueError), match="cutouts"):
        SynthConfig(out=str(tmp_path), kind="render", cutouts=str(tmp_path))
