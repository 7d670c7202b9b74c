"""``liwi predict`` end to end with the shipped default model."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liwi.cli import main
from liwi.imageio import decode_grey, decode_rgb, decode_rgba, encode_png

SAMPLE = Path("data/sample_lake")


def test_predict_writes_the_output_contract(tmp_path):
    photos = sorted(SAMPLE.glob("*.jpg"))[:2]
    assert photos, "the sample lake ships with photos"
    out = tmp_path / "o"
    assert main(["predict", *map(str, photos), "--out", str(out), "--psd"]) == 0
    for photo in photos:
        folder = out / photo.stem
        h, w = decode_rgb(photo.read_bytes()).shape[:2]
        assert decode_rgb((folder / "background.png").read_bytes()).shape == (h, w, 3)
        assert decode_rgba((folder / "foreground.png").read_bytes()).shape == (h, w, 4)
        assert decode_grey((folder / "shadow.png").read_bytes()).shape == (h, w)
        assert (folder / "recomposed.png").is_file() and (folder / "layers.psd").is_file()
        manifest = json.loads((folder / "layers.json").read_text())
        assert manifest["width"] == w and manifest["height"] == h
        assert manifest["layers"][0]["kind"] == "background"
        for entry in manifest["layers"]:
            assert (folder / entry["file"]).is_file()
            assert entry["file"].endswith(f"_{entry['name']}.png")


def test_predict_with_prompts_and_layer_limit(tmp_path):
    img = np.random.default_rng(0).random((60, 90, 3)).astype(np.float32)
    src = tmp_path / "x.png"
    src.write_bytes(encode_png(img))
    out = tmp_path / "o"
    args = ["predict", str(src), "--out", str(out), "--box", "10,10,50,40", "--point", "20,20"]
    assert main([*args, "--max-layers", "2"]) == 0
    manifest = json.loads((out / "x" / "layers.json").read_text())
    assert manifest["n_layers"] <= 2 and manifest["meta"]["prompted"] is True


def test_bad_inputs_fail_clearly_without_losing_the_good_ones(tmp_path, capsys):
    good = tmp_path / "good.png"
    good.write_bytes(encode_png(np.full((20, 20, 3), 0.5, np.float32)))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"junk")
    out = tmp_path / "o"
    assert main(["predict", str(bad), str(good), "--out", str(out)]) == 1
    assert "bad.jpg" in capsys.readouterr().err
    assert (out / "good" / "layers.json").is_file() and not (out / "bad").exists()
    assert main(["predict", str(good), "--out", str(out), "--box", "50,50,60,60"]) == 1


def test_malformed_box_is_a_usage_error():
    with pytest.raises(SystemExit):
        main(["predict", "x.png", "--out", "o", "--box", "1,2,3"])


def test_cli_entry_point_runs(tmp_path):
    src = tmp_path / "p.png"
    src.write_bytes(encode_png(np.full((16, 24, 3), 0.3, np.float32)))
    res = subprocess.run(
        [sys.executable, "-m", "liwi.cli", "predict", str(src), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o" / "p" / "background.png").is_file()


def test_method_and_prior_flags(tmp_path):
    from pathlib import Path

    from liwi.cli import main

    photo = Path(__file__).resolve().parents[2] / "data" / "sample_lake" / "rocket_tall.jpg"
    assert main(["predict", str(photo), "--out", str(tmp_path / "p"), "--method", "prior"]) == 0
    assert (tmp_path / "p" / "rocket_tall" / "layers.json").is_file()
    assert main(["predict", str(photo), "--out", str(tmp_path / "n"), "--prior", "none"]) == 0
    assert main(["predict", str(photo), "--out", str(tmp_path / "x"), "--prior", "nope"]) == 2
