"""The procedural scene generator: seeded, placed as asked, shadows on the far side."""

import numpy as np
import pytest

from liwi import sample_photos
from liwi.imageio import decode_rgb
from liwi.schema import row_to_stack
from liwi.synth.procedural import (
    Placement,
    procedural_photo,
    procedural_scene,
    soft_shape,
    write_scene_table,
)
from liwi.table import read_table


def bbox(alpha: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha > 0.5)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def test_same_seed_same_pixels_and_a_generator_is_accepted():
    a, b = procedural_scene(4, 64, 2), procedural_scene(4, 64, 2)
    assert np.array_equal(a.composite(), b.composite())
    assert not np.array_equal(a.composite(), procedural_scene(5, 64, 2).composite())
    c = procedural_scene(np.random.default_rng(4), 64, 2)
    assert c.n_layers == 3 and "seed" not in c.meta and a.meta["seed"] == 4


@pytest.mark.parametrize("n", [1, 2, 3])
def test_objects_stand_on_the_floor_side_by_side_each_with_a_shadow(n):
    stack = procedural_scene(n, (96, 128), n)
    assert stack.size == (96, 128) and len(stack.objects) == n
    assert [o.label for o in stack.objects] == [f"blob_{k + 1}" for k in range(n)]
    horizon = stack.meta["horizon"] * 96
    boxes = [bbox(o.alpha) for o in stack.objects]
    assert all(y1 > horizon for _, _, _, y1 in boxes)  # feet on the floor
    assert all(a[2] < b[0] for a, b in zip(boxes, boxes[1:], strict=False))  # left to right
    for o in stack.objects:
        # at most the default darkness (0.35–0.55); a slim object's umbra is a little lighter
        assert 0.25 < 1.0 - o.attenuation.min() <= 0.55 + 1e-6
        assert np.ptp(o.attenuation, axis=2).max() == 0  # grey shadow


def test_shadow_falls_away_from_the_light_and_the_lit_side_is_brighter():
    stack = procedural_scene(1, 128, 1)
    obj = stack.objects[0]
    x0, _, x1, y1 = bbox(obj.alpha)
    dark = (obj.attenuation[..., 0] < 0.9) & (obj.alpha < 0.01)
    ys, xs = np.nonzero(dark)
    assert xs.mean() > (x0 + x1) / 2 and ys.mean() > y1 - 2  # right of it, in front
    assert abs(int(ys.min()) - y1) <= 3  # attached at the foot
    row = (np.nonzero(obj.alpha > 0.99)[0].mean()).astype(int)
    lum = obj.rgba[row, :, :3].mean(axis=1)
    inside = np.nonzero(obj.alpha[row] > 0.99)[0]
    assert lum[inside[0]] > lum[inside[-1]]  # lit from the left


def test_placements_are_drawn_exactly_and_flat():
    red = Placement(cx=0.25, base=0.8, rx=0.1, ry=0.3, color=(0.9, 0.1, 0.1))
    box = Placement(cx=0.7, base=0.9, rx=0.15, ry=0.2, color=(0.1, 0.2, 0.8), shape="box")
    stack = procedural_scene(0, (100, 200), objects=[red, box], shadow=False, horizon=0.0)
    a, b = stack.objects
    assert bbox(a.alpha) == pytest.approx((30, 20, 70, 79), abs=1)
    assert bbox(b.alpha) == pytest.approx((110, 50, 169, 89), abs=1)
    assert b.alpha[55:85, 115:165].min() == 1.0  # a box fills its corners
    assert np.all(a.rgba[a.alpha > 0, :3] == np.float32([0.9, 0.1, 0.1]))
    assert np.all(a.attenuation == 1.0) and np.all(b.attenuation == 1.0)


def test_darkness_and_edge_width_are_honoured():
    obj = Placement(cx=0.5, base=0.7, rx=0.2, ry=0.25, soft=6.0)
    stack = procedural_scene(1, 96, objects=[obj], darkness=0.3)
    assert 1.0 - stack.objects[0].attenuation.min() == pytest.approx(0.3, abs=0.02)
    ramp = (stack.objects[0].alpha > 0) & (stack.objects[0].alpha < 1)
    sharp = soft_shape(96, 96, Placement(cx=0.5, base=0.7, rx=0.2, ry=0.25, soft=1.0))
    assert ramp.sum() > 4 * ((sharp > 0) & (sharp < 1)).sum()
    with pytest.raises(ValueError, match="unknown shape"):
        soft_shape(8, 8, Placement(0.5, 0.5, 0.2, 0.2, shape="star"))


def test_photo_and_the_sample_photos_reexport():
    assert sample_photos.procedural_scene is procedural_scene
    assert decode_rgb(procedural_photo(3, 80, 2)).shape == (80, 80, 3)
    png = decode_rgb(procedural_photo(3, 80, 2, jpeg=False))
    assert np.abs(png - procedural_scene(3, 80, 2).composite()).max() <= 0.5 / 255 + 1e-6


def test_scene_table_has_splits_and_valid_stacks(tmp_path):
    out = write_scene_table(str(tmp_path / "t"), n=10, size=40, seed=2)
    rows = read_table(out).to_pylist()
    assert [r["split"] for r in rows].count("train") == 8 and len(rows) == 10
    stacks = [row_to_stack(r) for r in rows]
    assert {len(s.objects) for s in stacks} <= {1, 2} and all(s.size == (40, 40) for s in stacks)
