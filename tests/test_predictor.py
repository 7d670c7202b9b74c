"""Predictor: any size and aspect, batching, prompts, peeling limits, model URIs."""

import numpy as np
import pytest
import torch

from liwi.assembly import assemble
from liwi.imageio import encode_png
from liwi.layers import LayerStack
from liwi.model import ModelConfig, build_model, save_checkpoint
from liwi.model.prompts import Prompt, PromptError
from liwi.predictor import Predictor, PredictorError

TINY = ModelConfig(base_channels=8, depth=2, resolution=32)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(TINY)
    with torch.no_grad():  # make it peel something: alpha high in the middle of the image
        model.heads.alpha.bias.fill_(2.0)
    return save_checkpoint(model, tmp_path_factory.mktemp("m") / "tiny.pt")


@pytest.fixture(scope="module")
def predictor(ckpt):
    return Predictor.from_uri(str(ckpt), device="cpu", prior=None)  # the network alone


@pytest.mark.parametrize("h, w", [(37, 91), (64, 64), (5, 301), (250, 17)])
def test_any_size_comes_back_at_input_resolution(predictor, h, w):
    img = np.random.default_rng(0).random((h, w, 3)).astype(np.float32)
    stack = predictor.decompose(img, max_layers=3)
    assert isinstance(stack, LayerStack) and stack.size == (h, w)
    assert 1 <= stack.n_layers <= 3
    for obj in stack.objects:
        assert obj.rgba.shape == (h, w, 4)
    assert stack.composite().shape == (h, w, 3)


def test_detail_outside_the_object_is_the_inputs(ckpt):
    torch.manual_seed(0)
    model = build_model(TINY)  # fresh heads: background delta 0, colour delta 0
    with torch.no_grad():
        model.heads.alpha.weight.zero_()
        model.heads.alpha.bias.fill_(-30.0)  # nothing to peel
    img = np.random.default_rng(1).random((100, 60, 3)).astype(np.float32)
    p = Predictor(model, device="cpu")
    out = assemble(p._run([img], [None])[0])
    # no object: the background is the untouched full-resolution input, not a resample
    assert out["alpha"].max() < 1e-6
    assert np.abs(out["background"] - img).max() < 1e-5


def test_flip_average_is_the_mean_of_the_photo_and_its_mirror(ckpt):
    # each pass averages the network's answer with its answer on the mirrored photo
    # (mirrored back); the padding stays right/below, so the two views see the same pixels
    p = Predictor.from_uri(str(ckpt), device="cpu", prior=None)
    img = np.random.default_rng(9).random((37, 91, 3)).astype(np.float32)  # padded to 32s
    box = Prompt(box=(5, 3, 40, 30))
    mirrored_box = Prompt(box=(91 - 40, 3, 91 - 5, 30))
    assert p.flip_average  # the default
    both = p._run([img], [box])[0]
    p.flip_average = False
    plain = p._run([img], [box])[0]
    mirror = p._run([img[:, ::-1].copy()], [mirrored_box])[0]
    gaps = []
    for key in ("alpha", "shadow", "background"):
        expected = (plain[key] + mirror[key][:, ::-1]) / 2
        np.testing.assert_allclose(both[key], expected, atol=1e-5)
        gaps.append(np.abs(plain[key] - mirror[key][:, ::-1]).max())
    assert max(gaps) > 1e-3  # the two views really differ, so the average is a real test


def test_batch_equals_single_and_accepts_bytes_and_uint8(predictor):
    rng = np.random.default_rng(2)
    a = rng.random((40, 50, 3)).astype(np.float32)
    b = (rng.random((30, 30, 3)) * 255).astype(np.uint8)
    single = predictor.decompose(a)
    batch = predictor.decompose_batch([a, encode_png(b)], max_layers=2)
    assert len(batch) == 2 and batch[1].size == (30, 30)
    assert len(single.objects) >= len(batch[0].objects)
    # objects are back to front: [-1] is the first one peeled, the same in both runs
    np.testing.assert_allclose(batch[0].objects[-1].alpha, single.objects[-1].alpha, atol=1e-5)


def test_max_layers_bounds_the_stack(predictor):
    img = np.random.default_rng(3).random((32, 32, 3)).astype(np.float32)
    only_bg = predictor.decompose(img, max_layers=1)
    assert only_bg.n_layers == 1 and np.array_equal(only_bg.background, img)
    assert predictor.decompose(img, max_layers=2).n_layers <= 2
    with pytest.raises(PredictorError, match="max_layers"):
        predictor.decompose(img, max_layers=0)


def test_prompts_are_checked_and_change_the_input(predictor):
    img = np.random.default_rng(4).random((40, 40, 3)).astype(np.float32)
    boxed = predictor.decompose(img, prompt=Prompt(box=(5, 5, 20, 20)))
    assert boxed.meta["prompted"] is True
    plain = predictor.decompose(img)
    # the prompt steers the first peel, which is the top object (last, back to front)
    assert not np.allclose(boxed.objects[-1].alpha, plain.objects[-1].alpha)
    with pytest.raises(PromptError, match="outside"):
        predictor.decompose(img, prompt=Prompt(points=[(100, 5)]))


def test_bad_images_are_clear_errors(predictor):
    with pytest.raises(PredictorError, match="H×W×3"):
        predictor.decompose(np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ValueError):
        predictor.decompose(b"not an image")


def test_uris_path_folder_file_uri_and_missing(ckpt):
    for uri in (str(ckpt), str(ckpt.parent), f"file://{ckpt}"):
        assert Predictor.from_uri(uri, device="cpu", prior=None).config == TINY
    with pytest.raises(PredictorError, match="model not found"):
        Predictor.from_uri("/no/such/model.pt")


def test_a_lake_checkpoint_loads_through_one_cached_copy(ckpt, tmp_path, monkeypatch):
    import tempfile

    from liwi.predictor import resolve_checkpoint

    monkeypatch.setenv("LIWI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    first = resolve_checkpoint(f"file://{ckpt}")
    assert resolve_checkpoint(f"file://{ckpt}") == first  # loaded again: the same file
    assert first.read_bytes() == ckpt.read_bytes()
    assert first.parent == tmp_path / "home" / "cache"
    assert list((tmp_path / "home" / "cache").iterdir()) == [first]  # no partial files
    assert list((tmp_path / "tmp").iterdir()) == []  # and no temporary copy left behind


def test_mlflow_uri_resolves_a_logged_checkpoint(ckpt, tmp_path, monkeypatch):
    import tempfile

    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    # through the environment, and no process-wide URI left behind for later tests
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(ckpt), artifact_path="model")
    monkeypatch.setenv("LIWI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    p = Predictor.from_uri(f"runs:/{run.info.run_id}/model", device="cpu", prior=None)
    assert p.config == TINY
    assert list((tmp_path / "tmp").iterdir()) == []  # the download folder is removed
    assert len(list((tmp_path / "home" / "cache").iterdir())) == 1


def test_default_model_ships_and_loads():
    p = Predictor.from_uri(None, device="cpu")
    assert p.source == "default"
    stack = p.decompose(np.full((48, 64, 3), 0.5, np.float32))
    assert stack.size == (48, 64)


@pytest.fixture(scope="module")
def shipped():
    """The shipped model with the default pretrained prior (U²-Netp, fetched by the set-up)."""
    return Predictor.from_uri(None, device="cpu")


def _photo(name: str) -> np.ndarray:
    from pathlib import Path

    from liwi.imageio import decode_rgb

    lake = Path(__file__).resolve().parents[1] / "data" / "sample_lake"
    return decode_rgb((lake / name).read_bytes())


def test_prior_finds_the_main_object_unprompted(shipped):
    img = _photo("rocket_tall.jpg")
    stack = shipped.decompose(img)
    assert stack.meta["prior"] == "u2netp-liwi" and len(stack.objects) >= 1
    h, w = img.shape[:2]
    # one layer holds the rocket body (centre column); the launch tower beside it, whose foot
    # is lower in the frame, may be peeled in the same look and then stands in front
    centre = [o for o in stack.objects if o.alpha[h // 2, w // 2 - 10 : w // 2 + 10].max() > 0.9]
    assert len(centre) == 1 and 0.01 < centre[0].alpha.mean() < 0.3
    assert centre[0].label == "salient object"


def test_the_second_look_finds_the_object_behind_and_not_residue(shipped, monkeypatch):
    # the prior marks the astronaut; the shuttle behind her (upper right) is the most salient
    # thing left once she is peeled. Off by default (predictor.SECOND_LOOK): one look
    photo = _photo("astronaut_portrait.jpg")
    assert not shipped.second_look
    once = shipped.decompose(photo, max_layers=3)
    assert len(once.objects) == 1 and once.meta["second_look"] == "not run"
    monkeypatch.setattr(shipped, "second_look", True)
    stack = shipped.decompose(photo, max_layers=3)
    assert len(stack.objects) == 2 and stack.meta["second_look"] == "found"
    h, w = photo.shape[:2]
    behind = stack.objects[0].alpha  # back to front: the second look's object first
    ys, xs = np.nonzero(behind > 0.5)
    assert xs.mean() > 0.75 * w and ys.mean() < 0.5 * h
    # it is new: almost none of it lies inside the astronaut
    assert ((behind > 0.5) & (stack.objects[1].alpha > 0.5)).mean() < 0.01
    # no room in the budget, or no second look: the astronaut alone
    two = shipped.decompose(photo, max_layers=2)
    assert len(two.objects) == 1 and two.meta["second_look"] == "not run"
    # the cat: what the prior sees after the cat is peeled is a sliver along its edge
    # (< 8 % of the cat), not an object
    cat = shipped.decompose(_photo("cat.jpg"), max_layers=3)
    assert len(cat.objects) == 1 and cat.meta["second_look"] == "nothing"


def test_a_cropped_close_up_is_peeled_whole_on_the_second_opinion(shipped):
    # cropped 15 % on the left, the default prior (u2netp-liwi) is unsure and keeps the
    # cat's eyes; its base U²-Netp answers and the whole cat is peeled; the stack says so
    cat = _photo("cat.jpg")
    crop = np.ascontiguousarray(cat[:, int(0.15 * cat.shape[1]) :])
    stack = shipped.decompose(crop, max_layers=2)
    assert stack.meta["prior"] == "u2netp-liwi" and stack.meta["prior_answer"] == "u2netp"
    assert len(stack.objects) == 1 and stack.objects[0].alpha.mean() > 0.5
    native = shipped.decompose(cat, max_layers=2)
    assert native.meta["prior_answer"] == "u2netp-liwi"


class _BandPrior:
    """A stand-in prior whose map, on any photo, is one bright band (rows 20-39)."""

    weight = "band"

    def __init__(self, x0: int, x1: int):
        self.x0, self.x1 = x0, x1

    def maps(self, image, side=None):
        m = np.zeros((7, *image.shape[:2]), np.float32)
        m[:, 20:40, self.x0 : self.x1] = 1.0
        return m

    def alpha(self, image, maps=None):
        return self.maps(image)[0]


@pytest.mark.parametrize(("x0", "x1", "found"), [(0, 100, False), (10, 90, True)])
def test_the_second_look_skips_what_spans_the_frame(shipped, monkeypatch, x0, x1, found):
    """A find that touches two opposite edges is a bare floor or wall, not an object."""
    import liwi.predictor as predictor_module
    from liwi.layers import ObjectLayer

    rng = np.random.default_rng(3)
    background = rng.random((80, 100, 3)).astype(np.float32)
    peeled_alpha = np.zeros((80, 100), np.float32)
    peeled_alpha[50:70, 40:60] = 1.0  # the object already peeled, below the band
    peeled = [ObjectLayer.from_maps(background, peeled_alpha)]
    monkeypatch.setattr(shipped, "prior", _BandPrior(x0, x1))
    monkeypatch.setattr(shipped, "second_look", True)  # off by default
    step = shipped._look_again(background, peeled)
    assert (len(step) == 1) is found
    monkeypatch.setattr(predictor_module, "SECOND_LOOK_NO_SPAN", False)
    assert len(shipped._look_again(background, peeled)) == 1


@pytest.mark.parametrize(
    "colour", [(0.0, 0.0, 0.0), (0.47, 0.47, 0.47), (1.0, 1.0, 1.0), (20 / 255, 10 / 255, 10 / 255)]
)
@pytest.mark.parametrize("size", [(200, 300), (700, 3)])
def test_a_flat_photo_gives_the_background_alone(shipped, colour, size):
    # no structure, nothing to peel (the network alone invents objects in a black frame);
    # a uniform colour whose channels differ is flat too (it was peeled as a 93 % object)
    flat = np.broadcast_to(np.float32(colour), (*size, 3)).copy()
    stack = shipped.decompose(flat)
    assert stack.objects == [] and stack.meta["peel_passes"] == 0
    assert stack.meta["second_look"] == "not run"
    np.testing.assert_array_equal(stack.background, flat)


def test_full_resolution_path_keeps_untouched_pixels_identical(shipped):
    rng = np.random.default_rng(5)
    h, w = 120, 200
    img = rng.random((h, w, 3)).astype(np.float32)
    own = np.zeros((h, w, 1), np.float32)
    own[40:60, 30:50] = 0.9  # the network's object
    shadow = np.ones((h, w, 1), np.float32)
    shadow[60:70, 30:60] = 0.5  # its shadow
    raw = {
        "image": img,
        "alpha": own,
        "shadow": shadow,
        "bg_delta": rng.normal(0, 0.1, (h, w, 3)).astype(np.float32),  # change everywhere
        "background": rng.random((h, w, 3)).astype(np.float32),
    }
    out = assemble(raw)
    grow = 0.03 * max(h, w) + 2  # REGION_GROW_FRAC of the long side, plus the distance slack
    far = np.ones((h, w), bool)
    far[int(40 - grow) : int(70 + grow), : int(60 + grow)] = False
    np.testing.assert_array_equal(out["background"][far], img[far])
    assert not np.allclose(out["background"][45:55, 35:45], img[45:55, 35:45])  # filled hole
    # on a real photo most of the background is the input's own pixels, untouched
    photo = _photo("rocket_tall.jpg")
    stack = shipped.decompose(photo, max_layers=2)
    assert stack.size == photo.shape[:2]
    assert (stack.background == photo).all(axis=2).mean() > 0.3


def test_box_prompt_narrows_the_prior(shipped):
    img = _photo("rocket_launch.jpg")
    box = (245, 110, 305, 330)
    stack = shipped.decompose(img, prompt=Prompt(box=box), max_layers=2)
    a = stack.objects[-1].alpha
    inside = np.zeros_like(a, bool)
    inside[110:330, 245:305] = True
    slack = np.zeros_like(a, bool)  # the box grown by BOX_SLACK (25 %) of its size
    slack[55:385, 230:320] = True
    assert a[inside].mean() > 0.1 and a[~slack].max() == 0.0


def test_missing_prior_weight_is_a_clear_error(ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("LIWI_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(PredictorError, match="liwi weights fetch u2netp"):
        Predictor.from_uri(str(ckpt), device="cpu", prior="u2netp")


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    """Model v2 at step 0 (LiWi heads on the pretrained U²-Netp trunk) with the prior."""
    from liwi.model.u2layernet import pretrained

    path = save_checkpoint(pretrained(), tmp_path_factory.mktemp("v2") / "v2.pt")
    # v2 reads the maps of the prior its trunk holds (and was trained with): u2netp
    return Predictor.from_uri(str(path), device="cpu", prior="u2netp")


def test_v2_reads_the_priors_maps_once_per_photo(v2, monkeypatch):
    assert v2.net_side == v2.config.resolution  # its own scale, not LayerNet's 1.125 ×
    monkeypatch.setattr(v2, "second_look", False)  # that one runs the prior on the background
    calls = []
    real = v2.prior.maps_with_source
    monkeypatch.setattr(v2.prior, "maps_with_source", lambda im: calls.append(1) or real(im))
    photo = _photo("rocket_tall.jpg")
    stack = v2.decompose(photo, max_layers=3)
    assert len(calls) == 1 and v2.reads_saliency
    assert stack.size == photo.shape[:2] and len(stack.objects) >= 1
    top = stack.objects[-1].alpha
    h, w = top.shape
    assert top[h // 2, w // 2 - 10 : w // 2 + 10].max() > 0.9  # the rocket body
    assert (stack.background == photo).all(axis=2).mean() > 0.3  # untouched pixels


def test_v2_does_not_run_the_prior_on_a_flat_photo(v2, monkeypatch):
    # a flat photo is not peeled, so the prior's maps are not worth computing
    calls = []
    real = v2.prior.maps_with_source
    monkeypatch.setattr(v2.prior, "maps_with_source", lambda im: calls.append(1) or real(im))
    stack = v2.decompose(np.full((64, 96, 3), 0.3, np.float32), max_layers=3)
    assert calls == [] and stack.objects == []
