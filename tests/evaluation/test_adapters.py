"""Crello (Hub Parquet layout) and DIS-5K (im/ + gt/) → layer tables, on fixtures made here."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liwi.evaluation.adapters import (
    MASK_ONLY,
    convert_crello,
    convert_dis5k,
    crello_stack,
)
from liwi.imageio import encode_png
from liwi.schema import row_to_stack
from liwi.table import read_table

# Crello stores every element image as a Hub ``Image`` feature: a {bytes, path} struct.
IMAGE_STRUCT = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


def _solid_rgba(h, w, rgb, alpha=1.0):
    arr = np.zeros((h, w, 4), np.float32)
    arr[..., :3] = rgb
    arr[..., 3] = alpha
    return encode_png(arr)


def _crello_part(path, designs):
    """A Parquet part with Crello's column layout (canvas scalars + element sequences)."""
    table = pa.table(
        {
            "id": pa.array([d["id"] for d in designs]),
            "length": pa.array([len(d["left"]) for d in designs], pa.int64()),
            "canvas_width": pa.array([d["cw"] for d in designs], pa.int64()),
            "canvas_height": pa.array([d["ch"] for d in designs], pa.int64()),
            "type": pa.array([[0] * len(d["left"]) for d in designs], pa.list_(pa.int64())),
            "left": pa.array([d["left"] for d in designs], pa.list_(pa.float32())),
            "top": pa.array([d["top"] for d in designs], pa.list_(pa.float32())),
            "width": pa.array([d["width"] for d in designs], pa.list_(pa.float32())),
            "height": pa.array([d["height"] for d in designs], pa.list_(pa.float32())),
            "angle": pa.array([[0.0] * len(d["left"]) for d in designs], pa.list_(pa.float32())),
            "opacity": pa.array([d["opacity"] for d in designs], pa.list_(pa.float32())),
            "image": pa.array(
                [[{"bytes": b, "path": None} for b in d["images"]] for d in designs],
                pa.list_(IMAGE_STRUCT),
            ),
        }
    )
    pq.write_table(table, path)


def _design(did, normalised=False):
    cw, ch = 40, 30
    red = _solid_rgba(4, 4, (1.0, 0.0, 0.0))
    # background element covers the canvas; a blue square 10×10 at (20, 5), half opaque
    geom = {"left": [0.0, 20.0], "top": [0.0, 5.0], "width": [40.0, 10.0], "height": [30.0, 10.0]}
    if normalised:
        geom = {
            k: [v / (cw if k in ("left", "width") else ch) for v in vals]
            for k, vals in geom.items()
        }
    return {
        "id": did,
        "cw": cw,
        "ch": ch,
        **geom,
        "opacity": [1.0, 0.5],
        "images": [red, _solid_rgba(4, 4, (0.0, 0.0, 1.0))],
    }


@pytest.mark.parametrize("normalised", [False, True])
def test_crello_design_renders_background_and_placed_elements(normalised):

    d = _design("a", normalised)
    row = {
        "canvas_width": d["cw"],
        "canvas_height": d["ch"],
        "left": d["left"],
        "top": d["top"],
        "width": d["width"],
        "height": d["height"],
        "opacity": d["opacity"],
        "angle": [0.0, 0.0],
        "image": [{"bytes": b, "path": None} for b in d["images"]],
    }
    stack = crello_stack(row, max_side=None)
    assert stack.size == (30, 40) and len(stack.objects) == 1
    np.testing.assert_allclose(stack.background[0, 0], [1, 0, 0], atol=1e-6)
    alpha = stack.objects[0].alpha
    assert alpha[10, 25] == pytest.approx(0.5, abs=1e-3)  # inside the square: opacity 0.5
    assert alpha[2, 2] == 0 and alpha[10, 35] == 0  # outside it
    assert (alpha > 0.25).sum() == pytest.approx(100, abs=12)  # ~10×10 px


def test_convert_crello_writes_a_valid_table_and_reports_bad_designs(tmp_path):
    bad = _design("bad")
    bad["cw"], bad["ch"] = 3, 1  # old releases stored canvas sizes as class indices
    _crello_part(tmp_path / "train-00000-of-00001.parquet", [_design("a"), _design("b", True), bad])
    summary = convert_crello(tmp_path, str(tmp_path / "table"), max_side=32)
    assert summary.rows == 2 and len(summary.skipped) == 1 and "class index" in summary.skipped[0]
    table = read_table(str(tmp_path / "table"))  # validates schema v2
    rows = table.to_pylist()
    assert {r["split"] for r in rows} == {"test"} and {r["n_layers"] for r in rows} == {2}
    stack = row_to_stack(rows[0])
    assert max(stack.size) == 32  # resized to max_side, aspect kept (40×30 → 32×24)
    assert stack.size == (24, 32)


def test_crello_rejects_parquet_of_another_layout(tmp_path):
    pq.write_table(pa.table({"id": ["x"], "caption": ["y"]}), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="not a Crello Parquet part: missing columns"):
        convert_crello(tmp_path / "other.parquet", str(tmp_path / "t"))


def test_convert_dis5k_pairs_im_and_gt_and_marks_rows_mask_only(tmp_path):
    from PIL import Image

    split = tmp_path / "DIS-VD"
    (split / "im").mkdir(parents=True)
    (split / "gt").mkdir()
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(
            split / "im" / f"{name}.jpg"
        )
        mask = np.zeros((20, 30), np.uint8)
        mask[5:15, 10:20] = 255
        Image.fromarray(mask).save(split / "gt" / f"{name}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(split / "im" / "orphan.jpg")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(split / "gt" / "wrong_size.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(split / "im" / "wrong_size.jpg")

    summary = convert_dis5k(split, str(tmp_path / "table"))
    assert summary.rows == 2
    assert any("orphan.jpg" in s for s in summary.skipped)
    assert any("wrong_size.jpg" in s and "differ in size" in s for s in summary.skipped)
    rows = read_table(str(tmp_path / "table")).to_pylist()
    assert all(dict(r["scores"])[MASK_ONLY] == 1.0 for r in rows)
    alpha = row_to_stack(rows[0]).objects[0].alpha
    assert alpha.sum() == 100 and alpha[10, 15] == 1 and alpha[0, 0] == 0


def test_dis5k_needs_im_and_gt_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs im/ and gt/"):
        convert_dis5k(tmp_path, str(tmp_path / "t"))
