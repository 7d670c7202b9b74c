"""Photographs in the prior fine-tune: read, cropped, labelled by the teacher, in a run."""

import json

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from torch.nn import functional as F

from liwi.synth.procedural import write_scene_table
from liwi.training.data import rows_from_table
from liwi.training.prior import PriorFinetuneConfig, make_batch, run
from liwi.training.prior_photos import (
    PHOTO_LONG_SIDE,
    PhotoTeacher,
    load_photos,
    photo_crop,
    photo_files,
)

SAMPLE_LAKE = "data/sample_lake"


def test_photo_folders_are_read_for_images_and_kept_small(tmp_path):
    Image.new("RGB", (1500, 300), (200, 10, 10)).save(tmp_path / "wide.png")
    (tmp_path / "notes.txt").write_text("not a photo")
    assert [p.name for p in photo_files([str(tmp_path)])] == ["wide.png"]
    (photo,) = load_photos([str(tmp_path)])
    assert photo.shape == (128, PHOTO_LONG_SIDE, 3) and photo.dtype == np.float32
    assert abs(photo[..., 0].mean() - 200 / 255) < 1e-3
    with pytest.raises(FileNotFoundError, match="neither a file nor a folder"):
        photo_files([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .jpg"):
        photo_files([str(tmp_path / "empty")])


def test_a_photo_sample_is_the_photo_or_a_crop_of_at_least_the_minimum_share():
    photo = np.zeros((100, 200, 3), np.float32)
    rng = np.random.default_rng(0)
    shapes = [photo_crop(photo, rng, 0.6).shape for _ in range(200)]
    whole = sum(s == photo.shape for s in shapes)
    assert 60 < whole < 140  # about half are the whole photo
    assert all(60 <= h <= 100 and 120 <= w <= 200 for h, w, _ in shapes)


def test_photo_samples_take_the_teachers_map_as_their_target(tmp_path):
    table = write_scene_table(str(tmp_path / "table"), n=4, size=40, seed=3)
    rows = rows_from_table([table], split=None)
    teacher = PhotoTeacher("u2netp", load_photos([SAMPLE_LAKE]))
    cfg = PriorFinetuneConfig(tables=[table], side=64, photos=[SAMPLE_LAKE], photo_prob=1.0)
    cfg_flipless = cfg.model_copy(update={"flip_prob": 0.0, "photo_crop_min": 1.0})
    batch = make_batch(rows[:2], cfg_flipless, np.random.default_rng(1), teacher=teacher)
    assert batch["image"].shape == (2, 3, 64, 64) and batch["target"].shape == (2, 1, 64, 64)
    # replay the draws: which photo each sample took, then the teacher's map of it
    rng = np.random.default_rng(1)
    for i in range(2):
        rng.random()  # photo or row
        photo = teacher.photos[int(rng.integers(len(teacher.photos)))]
        rng.random()  # whole or crop (a crop of share 1 is the whole photo)
        if rng.random() >= 0.5:  # photo_crop drew a crop: its two shares and its place
            rng.uniform(), rng.uniform(), rng.integers(1), rng.integers(1)
        rng.random()  # flip (never, flip_prob 0)
        want = F.interpolate(
            torch.from_numpy(teacher.target(photo))[None, None],
            (64, 64),
            mode="bilinear",
            antialias=True,
        )[0]
        assert torch.allclose(batch["target"][i], want.clamp(0, 1), atol=1e-5)
    # and without a teacher the same config takes the rows' union alphas
    plain = make_batch(rows[:2], cfg_flipless, np.random.default_rng(1))
    assert not torch.allclose(plain["target"], batch["target"])


def test_photo_prob_without_photos_is_a_config_error():
    with pytest.raises(ValidationError, match="photo_prob > 0 needs photos"):
        PriorFinetuneConfig(tables=["t"], photo_prob=0.3)


def test_a_run_with_photos_scores_its_agreement_with_the_teacher(tmp_path):
    table = write_scene_table(str(tmp_path / "table"), n=8, size=40, seed=3)
    cfg = PriorFinetuneConfig(
        tables=[table],
        out=str(tmp_path / "run" / "prior.onnx"),
        side=64,
        steps=2,
        batch_size=2,
        val_samples=2,
        threads=1,
        photos=[f"{SAMPLE_LAKE}/cat.jpg", f"{SAMPLE_LAKE}/coffee_cup.jpg"],
        photo_prob=0.5,
    )
    path = run(cfg, progress=False)
    meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["liwi"])
    assert meta["photos_teacher"] == "u2netp" and meta["steps"] == 2
    hist = [json.loads(x) for x in path.with_suffix(".history.jsonl").read_text().splitlines()]
    first = [h for h in hist if h["kind"] == "val"][0]
    assert first["step"] == 0 and first["photo_agreement"] > 0.99  # the teacher agrees with itself
