"""assemble: the input's own pixels far from the object, the shadow kept where it is."""

import numpy as np

from liwi import assembly
from liwi.assembly import assemble


def test_faint_shadow_far_from_the_object_is_none_and_recomposites_exactly():
    rng = np.random.default_rng(6)
    h, w = 120, 200
    img = rng.random((h, w, 3)).astype(np.float32)
    own = np.zeros((h, w, 1), np.float32)
    own[40:60, 30:50] = 0.9
    shadow = np.full((h, w, 1), 0.99, np.float32)  # sub-2 % darkening everywhere (noise)
    shadow[60:70, 30:60] = 0.5
    raw = {
        "image": img,
        "alpha": own,
        "shadow": shadow,
        "bg_delta": np.zeros((h, w, 3), np.float32),
    }
    out = assemble(raw)
    grow = 0.03 * max(h, w) + 2  # REGION_GROW_FRAC of the long side, plus the distance slack
    far = np.ones((h, w), bool)
    far[int(40 - grow) : int(70 + grow), int(30 - grow) : int(60 + grow)] = False
    assert (out["shadow"][far] == 1.0).all()  # no shadow where the background is the input
    assert (out["shadow"][60:70, 30:60] == 0.5).all()  # the real shadow is kept
    # so the layers recomposite to the input there, and the shadow crops to its region
    np.testing.assert_array_equal((out["background"] * out["shadow"])[far], img[far])
    dark = (out["shadow"] < 1.0).any(axis=2)
    cols = np.flatnonzero(dark.any(axis=0))
    assert cols[-1] - cols[0] < w * 0.6


def test_the_shadow_under_the_object_is_the_networks_own():
    # the network is trained on the whole attenuation, the part hidden by the object
    # included: what it predicts there is kept, neither filled in nor lifted
    rng = np.random.default_rng(7)
    h, w = 80, 120
    img = rng.random((h, w, 3)).astype(np.float32)
    alpha = np.zeros((h, w, 1), np.float32)
    alpha[20:60, 40:80] = 1.0  # an opaque object
    shadow = np.ones((h, w, 1), np.float32)
    shadow[50:70, 20:100] = 0.4  # its cast shadow, partly under it
    shadow[25:35, 45:75] = 0.95  # faint darkening high under the object
    raw = {"image": img, "alpha": alpha, "shadow": shadow, "bg_delta": np.zeros_like(img)}
    out = assemble(raw)
    np.testing.assert_array_equal(out["shadow"][20:60, 40:80], shadow[20:60, 40:80])
    np.testing.assert_array_equal(out["shadow"][60:70, 20:100], shadow[60:70, 20:100])


def _object_on(img: np.ndarray, box: tuple[int, int, int, int]) -> dict:
    """A pass's raw maps: an opaque red square painted on ``img``, no shadow, no lift."""
    h, w = img.shape[:2]
    alpha = np.zeros((h, w, 1), np.float32)
    x0, y0, x1, y1 = box
    alpha[y0:y1, x0:x1] = 1.0
    photo = img.copy()
    photo[y0:y1, x0:x1] = (1.0, 0.0, 0.0)
    return {
        "image": photo,
        "alpha": alpha,
        "shadow": np.ones((h, w, 1), np.float32),
        "bg_delta": np.zeros_like(img),
    }


def test_the_hole_is_filled_from_around_it_and_concurrent_calls_keep_their_own_fill():
    # the fill runs on a worker thread (beside the edge colours) at HOLE_FILL_SCALE of the
    # size: under the object the background continues the ramp around it, elsewhere it is
    # the input; two callers at once (a serve replica's threads) each get their own fill
    from concurrent.futures import ThreadPoolExecutor

    h, w = 160, 240
    ramp = np.linspace(0.1, 0.9, w, dtype=np.float32)
    img = np.repeat(np.repeat(ramp[None, :, None], h, axis=0), 3, axis=2)
    other = img[:, ::-1].copy()
    raws = [_object_on(img, (90, 50, 150, 110)), _object_on(other, (40, 30, 100, 90))]
    alone = [assemble(r)["background"] for r in raws]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda r: assemble(r)["background"], raws * 3))
    for k, bg in enumerate(together):
        np.testing.assert_array_equal(bg, alone[k % 2])
    hole = np.s_[55:105, 95:145]  # inside the object, away from its edge
    assert np.abs(alone[0][hole] - img[hole]).mean() < 0.05  # the ramp goes on underneath
    far = np.ones((h, w), bool)
    far[45:115, 85:155] = False
    np.testing.assert_array_equal(alone[0][far], img[far])


def test_a_forked_child_fills_with_its_own_worker_thread():
    # the parent's fill thread does not exist in a forked child (a process pool forked
    # after a decomposition): the child must not queue work on the parent's dead pool
    import multiprocessing

    h, w = 60, 80
    img = np.repeat(
        np.repeat(np.linspace(0.2, 0.8, w, dtype=np.float32)[None, :, None], h, 0), 3, 2
    )
    raw = _object_on(img, (30, 20, 50, 40))
    parent = assemble(raw)["background"]  # creates the parent's pool
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        child = pool.apply_async(_background_of, (raw,)).get(timeout=60)
    np.testing.assert_array_equal(child, parent)


def _background_of(raw: dict) -> np.ndarray:
    return assemble(raw)["background"]


def _shadow_scene() -> tuple[dict, slice, slice]:
    """A pass's raw maps: an opaque object and its visible cast shadow (S = 0.5) beside
    it; the background head proposes no lift at all."""
    rng = np.random.default_rng(11)
    h, w = 90, 140
    img = (0.2 + 0.3 * rng.random((h, w, 3))).astype(np.float32)
    alpha = np.zeros((h, w, 1), np.float32)
    alpha[20:50, 30:60] = 1.0
    shadow = np.ones((h, w, 1), np.float32)
    shadow[50:70, 30:90] = 0.5  # visible: below the object, nothing covers it
    raw = {"image": img, "alpha": alpha, "shadow": shadow, "bg_delta": np.zeros_like(img)}
    return raw, slice(52, 68), slice(32, 88)


def test_the_shadow_heads_lift_joins_the_background_heads(monkeypatch):
    raw, ys, xs = _shadow_scene()
    img = raw["image"]
    # the shadow head alone: the background is I ÷ S there, so it recomposites to I
    monkeypatch.setattr(assembly, "SHADOW_LIFT_SHARE", 1.0)
    alone = assemble(raw)["background"]
    np.testing.assert_allclose((alone * 0.5)[ys, xs], img[ys, xs], atol=1e-6)
    # the background head alone (it proposes nothing here): the input
    monkeypatch.setattr(assembly, "SHADOW_LIFT_SHARE", 0.0)
    np.testing.assert_array_equal(assemble(raw)["background"][ys, xs], img[ys, xs])
    # shipped: SHADOW_LIFT_SHARE of the way from the input towards I ÷ S
    monkeypatch.undo()
    mixed = assemble(raw)["background"]
    share = assembly.SHADOW_LIFT_SHARE
    np.testing.assert_allclose(mixed[ys, xs], img[ys, xs] * (1 + share), atol=1e-6)
    # far from the object and its shadow nothing is lifted
    np.testing.assert_array_equal(mixed[:, 120:], img[:, 120:])
