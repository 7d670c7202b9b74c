"""Real RGBA cut-outs as synthetic objects: loading, placement, true alpha, the job flag."""

import json

import numpy as np
import pytest
from PIL import Image

from liwi.schema import row_to_stack, stack_to_row
from liwi.synth.backgrounds import load_photos
from liwi.synth.cutouts import build_cutout_object, load_cutouts
from liwi.synth.generator import SampleSpec, generate
from liwi.synth.job import SynthConfig, run
from liwi.table import read_table


def _disc(side: int, colour: tuple[int, int, int]) -> Image.Image:
    """An opaque disc with a soft rim on a transparent square, in a margin of 10 px."""
    yy, xx = np.mgrid[:side, :side]
    r = np.hypot(yy - side / 2, xx - side / 2)
    alpha = np.clip((side / 2 - 10 - r) / 3, 0, 1)
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = (alpha * 255).round()
    return Image.fromarray(rgba, "RGBA")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cutouts")
    (root / "fruit").mkdir()
    _disc(120, (200, 40, 30)).save(root / "fruit" / "apple.png")
    _disc(90, (240, 200, 30)).save(root / "lemon.png")
    Image.new("RGB", (100, 100), (9, 9, 9)).save(root / "opaque.png")  # no transparency
    Image.new("RGBA", (100, 100), (9, 9, 9, 0)).save(root / "empty.png")  # nothing opaque
    return root


def test_only_pngs_with_real_transparency_are_loaded_and_cropped(folder):
    cutouts = load_cutouts(str(folder))
    assert [c.name for c in cutouts] == ["fruit/apple.png", "lemon.png"]
    apple = cutouts[0].rgba
    assert apple.shape[0] < 120 and apple.shape[0] == apple.shape[1]  # cropped to the alpha
    assert apple[..., 3].max() == 1.0 and apple[0, :, 3].max() < 0.5


def test_a_folder_without_cut_outs_is_an_error_naming_it(tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "photo.png")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_cutouts(str(tmp_path))


def test_the_object_stands_on_its_contact_row_at_the_asked_height(folder):
    cutouts = load_cutouts(str(folder))
    rng = np.random.default_rng(0)
    obj = build_cutout_object(rng, (200, 200), 100.0, 170, 80, cutouts)
    rows = np.nonzero(obj.alpha.max(axis=1) > 0.5)[0]
    assert abs(int(rows.max()) - 170) <= 2  # the opaque bottom sits on base_y
    assert 70 <= obj.params["height"] <= 80
    cols = np.nonzero(obj.alpha.max(axis=0) > 0.5)[0]
    assert abs((cols.min() + cols.max()) / 2 - 100) <= 2
    inside = obj.alpha > 0.9
    # The cut-out's own colour survives the resize (no dark fringe from transparent pixels).
    assert np.allclose(
        obj.color[inside].mean(axis=0), np.array([200, 40, 30]) / 255, atol=0.03
    ) or (np.allclose(obj.color[inside].mean(axis=0), np.array([240, 200, 30]) / 255, atol=0.03))
    assert obj.params["kind"] == "real" and obj.params["source"]["cutout"] in {
        "fruit/apple.png",
        "lemon.png",
    }


def test_samples_with_cut_outs_recompose_and_without_them_are_unchanged(folder):
    photos = load_photos()
    cutouts = load_cutouts(str(folder))
    spec = SampleSpec(3, 1, 96, 2)
    real = generate(spec, photos, cutouts)
    assert [o.label for o in real.stack.objects] == ["real_cutout", "real_cutout"]
    assert real.params["cutouts"] == {"count": 2, "share": 1.0}
    row = stack_to_row(real.stack, sample_id="x", source_uri="mem://x", image=real.image)
    assert np.abs(row_to_stack(row).composite() - real.clean).mean() < 1 / 255
    # No cut-outs, or a share of 0: the procedural objects of the same spec.
    plain = generate(spec, photos)
    assert "cutouts" not in plain.params
    assert all(o.label != "real_cutout" for o in plain.stack.objects)
    none_real = generate(spec, photos, cutouts, cutout_share=0.0)
    assert all(o.label != "real_cutout" for o in none_real.stack.objects)


def test_the_job_takes_a_cut_out_folder(folder, tmp_path):
    config = SynthConfig(
        out=str(tmp_path / "lake"),
        n=4,
        layers=2,
        size=64,
        seed=2,
        cutouts=str(folder),
        progress=False,
    )
    summary = run(config)
    rows = read_table(summary["table"]).to_pylist()
    assert len(rows) == 4
    for row in rows:
        assert [o["label"] for o in row["objects"]] == ["real_cutout"]
        params = json.loads(row["agent_trace"])[0]["params"]
        assert params["objects"][0]["source"]["cutout"] in {"fruit/apple.png", "lemon.png"}


def test_a_cut_out_share_without_a_cut_out_folder_is_an_error(tmp_path):
    from liwi.config import ConfigError

    with pytest.raises(ConfigError, match="cutout_share is set but cutouts is not"):
        SynthConfig.load(None, out=str(tmp_path / "lake"), cutout_share=0.5)
    assert SynthConfig.load(None, out=str(tmp_path / "lake")).cutout_share == 1.0
