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


def test_a_folder_stands_for_its_images_and_every_input_is_accounted_for(tmp_path, capsys):
    lake = tmp_path / "lake"
    (lake / "sub").mkdir(parents=True)
    flat = encode_png(np.full((20, 30, 3), 0.4, np.float32))
    (lake / "a.png").write_bytes(flat)
    (lake / "sub" / "b.PNG").write_bytes(flat)  # nested, upper-case extension
    (lake / "sub" / "c.jpg").write_bytes(b"junk")
    (lake / "notes.txt").write_text("not a photo")  # not an image extension: not an input
    (tmp_path / "empty").mkdir()
    out = lake / "out"  # the output inside the input folder
    # a photo named twice (the folder, then the file) is one input
    args = ["predict", str(lake), str(lake / "a.png"), str(tmp_path / "empty"), "--out", str(out)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "c.jpg" in captured.err and "a folder with no images" in captured.err
    assert captured.err.strip().splitlines()[-1] == "inputs 4: ok 2, error 2"
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]
    # a second run does not decompose the first one's layers (they are under --out)
    assert main(["predict", str(lake), "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "inputs 3: ok 2, error 1"
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]


def test_a_missing_file_is_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "gone.jpg"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{tmp_path / 'gone.jpg'}: No such file or directory", "inputs 1: ok 0, error 1"]


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


def test_second_look_flag(tmp_path):
    # the prior's second look finds the shuttle behind the astronaut; off by default
    photo = str(SAMPLE / "astronaut_portrait.jpg")
    layers = {}
    for name, extra in (("look", ["--second-look"]), ("once", [])):
        assert main(["predict", photo, "--out", str(tmp_path / name), *extra]) == 0
        manifest = json.loads((tmp_path / name / "astronaut_portrait" / "layers.json").read_text())
        layers[name] = manifest["n_layers"]
    assert layers == {"look": 3, "once": 2}


# -- memory budget and user errors (issue 15) ---------------------------------------------

MEMORY_BUDGET_MB = 1536  # peak RSS of one `liwi predict` on a huge, tiny PNG


def _tiny_huge_png(path: Path, side: int, mode: str) -> Path:
    """A few-KB PNG that declares ``side``² pixels (a flat colour compresses to nothing)."""
    from PIL import Image

    Image.new(mode, (side, side), 120 if mode in ("L", "P") else (120, 130, 140)).save(
        path, optimize=True
    )
    return path


def _peak_rss_mb(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd`` under a fresh wrapper process; its children's peak RSS is ``cmd``'s alone."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(r.returncode)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, timeout=600
    )
    return res, int(res.stdout.strip().splitlines()[-1]) / 1024


@pytest.mark.parametrize(("side", "mode"), [(3999, "P"), (7999, "RGB")])
def test_tiny_huge_png_stays_within_the_memory_budget(tmp_path, side, mode):
    src = _tiny_huge_png(tmp_path / f"huge{side}.png", side, mode)
    assert src.stat().st_size < 300_000
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "liwi.cli", "predict", str(src), "--out", str(out)]
    res, peak_mb = _peak_rss_mb(cmd)
    assert res.returncode == 0, res.stderr
    assert "downscaled to" in res.stderr
    assert peak_mb < MEMORY_BUDGET_MB, f"peak RSS {peak_mb:.0f} MB"
    manifest = json.loads((out / src.stem / "layers.json").read_text())
    assert manifest["width"] * manifest["height"] <= 2_000_000


def test_box_prompt_follows_the_downscale(tmp_path):
    img = np.random.default_rng(0).random((300, 400, 3)).astype(np.float32)
    src = tmp_path / "big.png"
    src.write_bytes(encode_png(img))
    out = tmp_path / "o"
    # The box is in the original 400×300 pixels; it lies outside the 200×150 working image.
    args = ["predict", str(src), "--out", str(out), "--max-pixels", "30000"]
    assert main([*args, "--box", "250,180,390,290", "--point", "300,250"]) == 0
    manifest = json.loads((out / "big" / "layers.json").read_text())
    assert (manifest["width"], manifest["height"]) == (200, 150)
    assert manifest["meta"]["prompted"] is True
    assert main([*args, "--box", "250,180,450,290"]) == 1  # outside the original photo


@pytest.fixture()
def png(tmp_path) -> Path:
    src = tmp_path / "p.png"
    src.write_bytes(encode_png(np.full((16, 24, 3), 0.3, np.float32)))
    return src


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--model", "{tmp}/missing.pt"], "model not found"),
        (["--model", "{tmp}/junk.pt"], "cannot read checkpoint"),
        (["--model", "s3://no-bucket/model.pt"], "cannot read s3://no-bucket/model.pt"),
        (["--device", "bogus"], "unknown device"),
        (["--out", "{tmp}/a_file"], "not a folder"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path, png, capsys, monkeypatch, extra, words):
    from liwi.testing.ray_head import free_port

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert main(["predict", str(png), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err


def test_cuda_without_a_gpu_is_one_line(tmp_path, png, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["predict", str(png), "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU" in err and len(err.strip().splitlines()) == 1, err


def test_dots_only_name_stays_inside_out(tmp_path, png):
    src = tmp_path / "in" / "...jpg"
    src.parent.mkdir()
    src.write_bytes(png.read_bytes())
    out = tmp_path / "deep" / "out"
    assert main(["predict", str(src), "--out", str(out)]) == 0
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]
    assert (out / "image" / "layers.json").is_file()
