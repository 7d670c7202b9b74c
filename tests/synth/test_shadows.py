"""Shadow geometry: projection, side of the light, penumbra growth, contact darkening, tint."""

import numpy as np
import pytest

from liwi.synth import shadows
from liwi.synth.shadows import Light

SIZE = 200
BASE = 150  # contact row of the test object


def pole(width: int = 10, height: int = 80, x0: int = 95) -> np.ndarray:
    """A tall opaque rectangle standing on row BASE."""
    a = np.zeros((SIZE, SIZE), np.float32)
    a[BASE - height + 1 : BASE + 1, x0 : x0 + width] = 1.0
    return a


def centroid(m: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[0 : m.shape[0], 0 : m.shape[1]]
    return float((xs * m).sum() / m.sum()), float((ys * m).sum() / m.sum())


def test_projection_maps_a_point_at_height_h_to_the_ground():
    a = np.zeros((SIZE, SIZE), np.float32)
    h = 40
    a[BASE - h, 60] = 1.0
    proj = shadows.project_silhouette(a, BASE, sx=0.5, sy=-0.25)
    y, x = np.unravel_index(np.argmax(proj), proj.shape)
    assert (x, y) == (60 + 20, BASE - 10)


@pytest.mark.parametrize("sx", [-1.0, -0.4, 0.4, 1.0])
@pytest.mark.parametrize("sy", [-0.4, 0.2])
def test_shadow_falls_on_the_far_side_from_the_light(sx, sy):
    alpha = pole()
    light = Light(sx=sx, sy=sy, softness=0.03, strength=0.7)
    occl = shadows.cast_shadow(alpha, BASE, light)
    ox, _ = centroid(alpha)
    shx, shy = centroid(occl * (alpha < 0.5))
    # The light lies at -(sx, sy) relative to the object; the shadow on the other side.
    assert np.sign(shx - ox) == np.sign(sx)
    assert np.sign(shy - BASE) == np.sign(sy)
    to_light = -light.direction()[:2]
    assert to_light[0] * (shx - ox) > 0  # light direction is consistent with the shading


def transition_width(row: np.ndarray) -> int:
    """Pixels in the soft 10–90 % band of a shadow profile."""
    peak = row.max()
    return int(((row > 0.1 * peak) & (row < 0.9 * peak)).sum())


def test_penumbra_widens_with_distance_from_contact():
    alpha = pole(width=30, height=120, x0=40)
    light = Light(sx=0.8, sy=-0.5, softness=0.08, strength=1.0)
    occl = shadows.cast_shadow(alpha, BASE, light, fade=0.0)
    near = occl[BASE - 5]  # shadow of the part 10 px above the contact
    far = occl[BASE - 50]  # shadow of the part 100 px above the contact
    assert transition_width(far) >= transition_width(near) + 6
    assert near.max() > 0.9  # near the contact the umbra is still dark


def test_contact_darkening_is_strongest_at_the_base():
    alpha = pole(width=40, height=100, x0=80)
    lights = [Light(sx=1.0, sy=-0.3, softness=0.05, strength=0.6)]
    s = shadows.object_attenuation(alpha, BASE, lights, np.ones(3, np.float32), 0.6)
    at_base = s[BASE + 1, 100].mean()  # just in front of the contact point
    below = s[BASE + 15, 100].mean()  # further towards the camera, outside the cast shadow
    along_far = s[BASE - 28, 100 + 95].mean()  # far end of the cast shadow
    along_near = s[BASE - 3, 100 + 12].mean()
    assert at_base < 0.75 and below > 0.95
    assert along_near < along_far  # darker near the contact, lighter far away
    assert s.min() >= 0.0 and s.max() <= 1.0


def test_cool_tint_darkens_blue_least():
    rng = np.random.default_rng(0)
    tints = [shadows.shadow_tint(rng) for _ in range(200)]
    cool = [t for t in tints if t[2] < t[0]]
    assert cool, "no cool tint drawn in 200 tries"
    alpha = pole()
    s = shadows.object_attenuation(alpha, BASE, [Light(0.8, -0.3, 0.03, 0.7)], cool[0], 0.5)
    shadowed = s.mean(axis=2) < 0.8
    assert (s[shadowed, 2] > s[shadowed, 0]).all()


def test_variable_blur_with_constant_sigma_matches_gaussian():
    import cv2

    rng = np.random.default_rng(1)
    m = (rng.random((64, 64)) > 0.7).astype(np.float32)
    ref = cv2.GaussianBlur(m, (0, 0), 2.0)
    out = shadows.variable_blur(m, np.full(m.shape, 2.0, np.float32))
    assert np.abs(out - ref).max() < 0.03


def test_grazing_light_is_refused():
    with pytest.raises(ValueError, match="sy must be non-zero"):
        shadows.project_silhouette(pole(), BASE, 1.0, 0.0)


def test_random_lights_keep_a_visible_projection():
    rng = np.random.default_rng(3)
    for _ in range(200):
        lights = shadows.random_lights(rng)
        assert 1 <= len(lights) <= 3
        assert all(abs(li.sy) >= shadows.MIN_ABS_SY for li in lights)
        assert sum(li.strength for li in lights) <= 0.9
