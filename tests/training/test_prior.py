"""Fine-tuning the salient prior: union targets without shadows, the ONNX round trip, a run."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from liwi.layers import LayerStack, ObjectLayer
from liwi.model.u2layernet import U2Trunk, load_trunk_weights, trunk_into_onnx
from liwi.priors.salient import SalientPrior
from liwi.schema import stack_to_row
from liwi.synth.procedural import write_scene_table
from liwi.training.data import decode_row
from liwi.training.prior import (
    PriorFinetuneConfig,
    background_photos,
    keeps_background,
    photo_and_union,
    prior_losses,
    run,
)
from liwi.weights import resolve


def test_union_alpha_covers_the_objects_and_not_their_shadows():
    h = w = 16
    bg = np.full((h, w, 3), 0.5, np.float32)
    a = np.zeros((h, w, 4), np.float32)
    a[2:6, 2:6] = (1, 0, 0, 1.0)
    b = np.zeros((h, w, 4), np.float32)
    b[4:8, 4:8] = (0, 1, 0, 0.5)
    shadow = np.zeros((h, w, 4), np.float32)
    shadow[10:14, 2:12] = (0, 0, 0, 0.6)  # a dark cast shadow: not object
    empty = np.zeros((h, w, 4), np.float32)
    stack = LayerStack(bg, [ObjectLayer(a, shadow), ObjectLayer(b, empty)])
    union = stack.foreground()[..., 3]  # the target photo_and_union reads from a row
    assert union[3, 3] == 1.0 and union[7, 7] == 0.5 and union[5, 5] == 1.0
    assert union[12, 5] == 0.0 and union.max() == 1.0
    row = stack_to_row(stack, sample_id="s", source_uri="mem://s")
    photo, from_row = photo_and_union(row)
    assert photo.shape == (h, w, 3)
    np.testing.assert_array_equal(from_row, decode_row(row)[0].foreground()[..., 3])
    # the loss reaches zero only on the target: a perfect map beats a map with the shadow
    target = torch.from_numpy(union)[None, None]
    with_shadow = target.clone()
    with_shadow[..., 10:14, 2:12] = 1.0
    good = prior_losses(target.repeat(1, 7, 1, 1), target, 1.0)["total"]
    bad = prior_losses(with_shadow.repeat(1, 7, 1, 1), target, 1.0)["total"]
    assert float(good) < float(bad)


def test_a_trunk_written_into_the_onnx_graph_runs_on_onnxruntime_as_in_torch():
    torch.manual_seed(0)
    path = str(resolve("u2netp"))
    trunk = U2Trunk("u2netp")
    load_trunk_weights(trunk, path)
    with torch.no_grad():  # a "fine-tuned" trunk: every convolution changed
        for m in trunk.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(1 + 0.05 * torch.randn_like(m.weight))
                m.bias.add_(0.01)
    model = onnx.load(path)
    trunk_into_onnx(trunk, model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 320, 320), np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    got = np.concatenate(session.run(None, {session.get_inputs()[0].name: (x - mean) / std}), 1)
    with torch.no_grad():
        want = trunk.eval()(torch.from_numpy(x)).numpy()
    original = np.concatenate(
        ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
            None, {session.get_inputs()[0].name: (x - mean) / std}
        ),
        1,
    )
    assert np.abs(got - want).max() < 1e-3  # the new weights, not the file's
    assert np.abs(original - want).max() > 1e-2


def test_a_short_run_writes_an_onnx_prior_the_predictor_can_load(tmp_path):
    table = write_scene_table(str(tmp_path / "table"), n=8, size=40, seed=3)
    cfg = PriorFinetuneConfig(
        tables=[table],
        out=str(tmp_path / "run" / "prior.onnx"),
        side=64,
        steps=2,
        batch_size=2,
        val_every=100,  # validated before the first step and after the last
        val_samples=2,
        threads=1,
    )
    path = run(cfg, progress=False)
    meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["liwi"])
    assert meta["steps"] == 2 and meta["fine_tuned_from"] == "u2netp"
    hist = [json.loads(x) for x in path.with_suffix(".history.jsonl").read_text().splitlines()]
    vals = [h for h in hist if h["kind"] == "val"]
    assert [h["step"] for h in vals] == [0, 2] and 0 <= vals[-1]["alpha_soft_iou"] <= 1
    assert path.with_suffix(".loss.png").stat().st_size > 0
    image = np.random.default_rng(1).random((48, 64, 3)).astype(np.float32)
    tuned = SalientPrior(str(path), threads=1).maps(image)
    base = SalientPrior("u2netp", threads=1).maps(image)
    assert tuned.shape == base.shape == (7, 320, 320) and not np.allclose(tuned, base)


def _row_with_backgrounds(params: dict, split: str = "train") -> dict:
    bg = np.full((8, 8, 3), 0.5, np.float32)
    stack = LayerStack(bg, [])
    trace = [{"tool": "synth.render", "version": "t", "spec": {}, "params": params}]
    return stack_to_row(
        stack, sample_id=str(params), source_uri="mem://s", split=split, agent_trace=trace
    )


def test_rows_are_kept_only_when_every_background_photo_is_allowed(tmp_path):
    allowed = ["Dune.jpg", "Wood.jpg"]
    generated = _row_with_backgrounds({"background": {"photo": "Dune.jpg", "flip": True}})
    rendered = _row_with_backgrounds(
        {"floor": {"photo": "cleanbgs_Wood.jpg", "span": 4.0}, "wall": None}
    )
    cat_wall = _row_with_backgrounds(
        {"floor": {"photo": "Dune.jpg"}, "wall": {"photo": "chelsea.jpg"}}
    )
    no_photo = _row_with_backgrounds({"objects": []})  # an ADD-labelled photo records none
    assert background_photos(rendered) == {"cleanbgs_Wood.jpg"}
    assert background_photos(cat_wall) == {"Dune.jpg", "chelsea.jpg"}
    kept = [keeps_background(r, allowed) for r in (generated, rendered, cat_wall, no_photo)]
    assert kept == [True, True, False, True]
    assert keeps_background(cat_wall, None)  # no list: every row
    assert not keeps_background(
        _row_with_backgrounds({"background": {"photo": "XDune.jpg"}}), allowed
    )  # a prefix must end in "_"
    # a config whose list leaves no training row stops with a clear error before training
    (tmp_path / "table").mkdir()
    pq.write_table(pa.Table.from_pylist([cat_wall]), tmp_path / "table" / "part-0.parquet")
    cfg = PriorFinetuneConfig(
        tables=[str(tmp_path / "table")], out=str(tmp_path / "p.onnx"), background_photos=allowed
    )
    with pytest.raises(ValueError, match="no ok train rows with allowed background photos"):
        run(cfg, progress=False)


def test_a_second_stage_blends_with_the_weight_it_names(tmp_path):
    table = write_scene_table(str(tmp_path / "table"), n=8, size=40, seed=3)
    common = dict(tables=[table], side=64, steps=2, batch_size=2, val_samples=2, threads=1)
    first = run(PriorFinetuneConfig(out=str(tmp_path / "a.onnx"), mix=1.0, **common), False)
    second = PriorFinetuneConfig(
        weight=str(first), out=str(tmp_path / "b.onnx"), blend_with="u2netp", mix=0.0, **common
    )
    path = run(second, progress=False)
    meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["liwi"])
    assert meta["fine_tuned_from"] == str(first) and meta["blended_with"] == "u2netp"
    image = np.random.default_rng(2).random((48, 64, 3)).astype(np.float32)
    maps = {w: SalientPrior(str(w), threads=1).maps(image) for w in (first, path)}
    base = SalientPrior("u2netp", threads=1).maps(image)
    assert np.abs(maps[path] - base).max() < 1e-4  # mix 0: all u2netp, none of stage one
    assert np.abs(maps[first] - base).max() > 1e-3
