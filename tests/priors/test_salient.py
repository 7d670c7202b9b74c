"""The pretrained salient-object prior: real U²-Netp weights, both backends, instances."""

from pathlib import Path

import numpy as np
import pytest

from liwi.imageio import decode_rgb
from liwi.priors.refine import instances
from liwi.priors.salient import SalientPrior, is_flat, prefer_base, unsure_ratio

LAKE = Path(__file__).resolve().parents[2] / "data" / "sample_lake"


@pytest.fixture(scope="module")
def prior():
    return SalientPrior("u2netp", threads=1)  # fetched by the set-up (make setup)


def test_converted_trunk_equals_onnxruntime(prior):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((1, 3, 320, 320)).astype(np.float32)
    ref = prior._run_onnx(x)
    with torch.no_grad():
        out = prior.torch_module()(torch.from_numpy(x))
    np.testing.assert_allclose(out[0].numpy(), ref[:, :1], atol=1e-4)  # the fused map
    # gradients flow through the converted graph: it can be fine-tuned
    xt = torch.from_numpy(x).requires_grad_(True)
    prior.torch_module()(xt)[0].mean().backward()
    assert xt.grad is not None and float(xt.grad.abs().sum()) > 0


def test_finds_the_cat_and_not_the_corners(prior):
    img = decode_rgb((LAKE / "cat.jpg").read_bytes())
    a = prior.alpha(img)
    assert a.shape == img.shape[:2] and a.dtype == np.float32
    h, w = a.shape
    assert a[h // 2 - 20 : h // 2 + 20, w // 2 - 20 : w // 2 + 20].mean() > 0.9  # the face
    assert a[:20, -20:].mean() < 0.1  # the blurred room behind it


def test_a_smaller_look_finds_the_same_cat(prior):
    # the second look runs the prior at 224² (the pinned graph declares 320²; its sizes
    # are opened at load) and must still see the object
    img = decode_rgb((LAKE / "cat.jpg").read_bytes())
    small = prior.maps(img, side=224)
    assert small.shape == (7, 224, 224)
    a, b = prior.alpha(img), prior.alpha(img, maps=small)
    inter, union = np.minimum(a, b).sum(), np.maximum(a, b).sum()
    assert inter / union > 0.8  # 0.84: coarser edges, the same object
    with pytest.raises(ValueError, match="multiple of 32"):
        prior.maps(img, side=200)


def test_the_stretch_steepens_the_edge_at_the_output_resolution(prior):
    # a disc whose edge ramps over ~2 px of the 320² map (U²-Netp's edges are that
    # steep), read for a 1280² photo
    import cv2

    from liwi.priors.refine import resize_map
    from liwi.priors.salient import STRETCH_HIGH, STRETCH_LOW

    yy, xx = np.mgrid[:320, :320]
    disc = np.clip((100 - np.hypot(yy - 160, xx - 160)) / 2 + 0.5, 0, 1).astype(np.float32)
    maps = np.zeros((7, 320, 320), np.float32)
    maps[0] = cv2.GaussianBlur(disc, (0, 0), 0.7)
    photo = np.random.default_rng(0).random((1280, 1280, 3), np.float32)  # only its size counts
    a = prior.alpha(photo, maps=maps)
    stretched_then_enlarged = resize_map(
        np.clip((maps[0] - STRETCH_LOW) / (STRETCH_HIGH - STRETCH_LOW), 0, 1), (1280, 1280)
    )
    assert a.shape == (1280, 1280) and a.dtype == np.float32
    assert a.min() == 0.0 and a.max() == 1.0  # bicubic overshoot is clipped
    soft = ((a > 0.02) & (a < 0.98)).sum()
    # stretched after enlarging, the soft edge is 0.62 × as wide as the old order gave
    assert soft < 0.75 * ((stretched_then_enlarged > 0.02) & (stretched_then_enlarged < 0.98)).sum()
    # the same object: the halves agree but for a pixel ring
    assert ((a > 0.5) != (stretched_then_enlarged > 0.5)).sum() < 0.01 * (a > 0.5).sum()
    # at the map's own size nothing is resized: the stretched map itself
    np.testing.assert_array_equal(
        prior.alpha(photo[:320, :320], maps=maps),
        np.clip((maps[0] - STRETCH_LOW) / (STRETCH_HIGH - STRETCH_LOW), 0, 1),
    )


@pytest.mark.parametrize("grey", [0.0, 0.5, 1.0])
def test_a_flat_photo_has_no_salient_object(prior, grey):
    # the network's peak on a flat photo is 0.001–0.06; min-max normalised, that noise
    # would become a full-strength object
    img = np.full((90, 120, 3), grey, np.float32)
    assert float(prior.maps(img)[0].max()) < 0.1
    assert prior.alpha(img).max() == 0.0


def test_flatness_is_per_channel():
    red = np.broadcast_to(np.float32([0.8, 0.1, 0.1]), (40, 30, 3))
    assert is_flat(red) and is_flat(red[..., 0])  # one colour, or one grey plane
    ramp = red.copy()
    ramp[:, :15, 1] += 0.05  # a faint edge in one channel only
    assert not is_flat(ramp)


def test_a_flat_photo_is_not_salient_even_where_the_network_says_so():
    # the fine-tuned default prior peaks at 0.98 on a black frame: flatness decides
    tuned = SalientPrior("u2netp-liwi", threads=1)
    black = np.zeros((90, 120, 3), np.float32)
    assert float(tuned.maps(black)[0].max()) > 0.5
    assert tuned.alpha(black).max() == 0.0


def _cat_cropped_left() -> np.ndarray:
    img = decode_rgb((LAKE / "cat.jpg").read_bytes())
    return np.ascontiguousarray(img[:, int(0.15 * img.shape[1]) :])


@pytest.fixture(scope="module")
def tuned():
    return SalientPrior("u2netp-liwi", threads=1)  # the default, bundled; base u2netp


def test_the_unsure_ratio_and_when_the_base_answers():
    disc = np.zeros((64, 64), np.float32)
    disc[16:48, 16:48] = 1.0
    assert unsure_ratio(disc) == 0.0  # crisp
    doubt = disc * 0.6 + 0.2  # the object at 0.8, the rest at 0.2: all undecided
    assert unsure_ratio(doubt) == pytest.approx(64 * 64 / (32 * 32))
    eyes = np.zeros_like(disc)
    eyes[20:24, 20:24] = eyes[20:24, 40:44] = 1.0
    eyes[10:54, 10:54] = np.maximum(eyes[10:54, 10:54], 0.4)
    assert unsure_ratio(eyes) > 2.0
    assert prefer_base(eyes, disc)  # sure and larger
    assert not prefer_base(disc, eyes)  # smaller and unsure
    assert not prefer_base(eyes, np.zeros_like(disc))  # the base sees nothing


def test_an_unsure_default_prior_takes_its_base_on_a_cropped_close_up(tuned):
    # cropped 15 % on the left, the fine-tuned prior keeps the cat's eyes (alpha mean
    # 0.07); U²-Netp keeps the whole cat (0.67): the base's maps answer
    crop = _cat_cropped_left()
    maps, answered = tuned.maps_with_source(crop)
    assert answered == "u2netp"
    assert tuned.alpha(crop).mean() > 0.5 and tuned.alpha(crop, maps).mean() > 0.5
    assert tuned.fused_maps([crop])[0].mean() > 0.5  # ADD's batched path decides alike
    whole = decode_rgb((LAKE / "cat.jpg").read_bytes())
    assert tuned.maps_with_source(whole)[1] == "u2netp-liwi"  # sure of the native photo


def test_without_its_base_fetched_the_prior_answers_alone(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LIWI_WEIGHTS_DIR", str(tmp_path / "empty"))
    alone = SalientPrior("u2netp-liwi", threads=1)
    with caplog.at_level("WARNING", logger="liwi.priors.salient"):
        maps, answered = alone.maps_with_source(_cat_cropped_left())
    assert answered == "u2netp-liwi" and alone.base is None
    assert "liwi weights fetch u2netp" in caplog.text


def test_a_prior_read_from_a_lake_asks_the_base_beside_it(tmp_path, monkeypatch):
    # a cluster worker with an empty cache reads both weights from the lake
    import shutil

    from liwi import weights

    lake = tmp_path / "lake"
    lake.mkdir()
    for name in ("u2netp-liwi", "u2netp"):
        shutil.copy(weights.resolve(name), lake / weights.spec(name).filename)
    monkeypatch.setenv("LIWI_WEIGHTS_DIR", str(tmp_path / "empty-cache"))
    worker = SalientPrior((lake / "u2netp-liwi.onnx").as_uri(), threads=1)
    maps, answered = worker.maps_with_source(_cat_cropped_left())
    assert answered == (lake / "u2netp.onnx").as_uri()
    assert worker.alpha(_cat_cropped_left(), maps).mean() > 0.5


def test_instances_split_and_order_nearest_first():
    a = np.zeros((100, 100), np.float32)
    a[10:30, 10:30] = 1.0  # far (higher in the frame)
    a[60:90, 50:80] = 1.0  # near (lower bottom edge)
    a[5, 95] = 1.0  # speck: below the minimum area
    objs = instances(a, limit=3, min_area=0.01, rel_area=0.1, grow=3)
    assert len(objs) == 2
    assert objs[0][75, 65] == 1.0 and objs[0][20, 20] == 0.0
    assert objs[1][20, 20] == 1.0 and objs[1][5, 95] == 0.0
    assert len(instances(a, limit=1, min_area=0.01, rel_area=0.1, grow=3)) == 1
    assert instances(np.zeros((8, 8), np.float32), 3, 0.01, 0.1, 2) == []


def test_instances_beyond_the_limit_join_the_last_object_with_merge_rest():
    a = np.zeros((100, 100), np.float32)
    a[70:90, 10:30] = 1.0  # nearest
    a[40:60, 40:60] = 1.0
    a[5:25, 70:90] = 1.0  # farthest: beyond a limit of 2
    dropped = instances(a, limit=2, min_area=0.01, rel_area=0.1, grow=3)
    merged = instances(a, limit=2, min_area=0.01, rel_area=0.1, grow=3, merge_rest=True)
    assert len(dropped) == len(merged) == 2
    assert dropped[1][15, 80] == 0.0  # lost from the foreground
    assert merged[1][15, 80] == 1.0 and merged[1][50, 50] == 1.0  # kept, in the last object
    assert np.array_equal(merged[0], dropped[0])
    assert np.isclose(sum(m.sum() for m in merged), a.sum())
    one = instances(a, limit=1, min_area=0.01, rel_area=0.1, grow=3, merge_rest=True)
    assert len(one) == 1 and np.isclose(one[0].sum(), a.sum())


def test_edge_colours_take_the_object_colour_on_its_soft_edge():
    from liwi.priors.refine import edge_colours

    h, w = 80, 120
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - 40, xx - 60)
    red, blue = np.array([0.9, 0.1, 0.1], np.float32), np.array([0.1, 0.2, 0.9], np.float32)
    for soft, worst in ((3.0, 0.05), (6.0, 0.25)):  # soft-edge width (px), largest error
        alpha = np.clip((25 - r) / soft, 0.0, 1.0).astype(np.float32)
        image = alpha[..., None] * red + (1 - alpha[..., None]) * blue
        colour = edge_colours(image, alpha)
        edge = (alpha > 0.1) & (alpha < 0.7)
        photo_err = np.abs(image[edge] - red).mean()  # the photo there is part blue: ~0.34
        assert np.abs(colour[edge] - red).mean() < 0.3 * photo_err
        assert np.abs(colour[edge] - red).max() < worst
        inside = alpha >= 0.99
        np.testing.assert_allclose(colour[inside], image[inside], atol=1e-6)
        far = r > 50
        np.testing.assert_allclose(colour[far], image[far], atol=1e-6)  # nothing near: the photo
