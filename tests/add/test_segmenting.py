"""The ``segment`` model stage: batched saliency maps, identical layers with it on or off."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liwi.add.base import ERROR, PENDING, SKIPPED, Pipeline, batch_to_rows, rows_to_batch
from liwi.add.config import DecomposeConfig
from liwi.add.driver import plan, stage_calls
from liwi.add.segmenting import Segment
from liwi.add.stages import Curate, Decompose, ReadDecode, ToRows, WriteParts
from liwi.sample_photos import procedural_photo

# torch trunk vs the ONNX graph on the same input (tests/model/test_u2layernet.py)
TRUNK_ATOL = 1e-4


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg_lake")
    for s in range(3):
        (root / f"p{s}.jpg").write_bytes(procedural_photo(s, 112, 1 + s % 2))
    return root


def decompose(lake, segment_stage: bool) -> list[dict]:
    """ReadDecode → (Segment) → Decompose on the lake, in this process; rows by path."""
    config = DecomposeConfig(
        input=str(lake), output=str(lake / "out"), runner="loop", segment_stage=segment_stage
    )
    batch = rows_to_batch([{"path": str(p)} for p in sorted(lake.glob("*.jpg"))])
    for call in stage_calls(config):
        if call.cls in (ReadDecode, Segment, Decompose):
            batch = call.cls(**call.kwargs)(batch)
    return batch_to_rows(batch)


def without_seconds(trace: str) -> list[dict]:
    return [{k: v for k, v in step.items() if k != "seconds"} for step in json.loads(trace)]


def test_layers_are_identical_with_the_segment_stage_on_and_off(lake):
    on, off = decompose(lake, True), decompose(lake, False)
    assert len(on) == len(off) == 3
    assert sum(r["status"] == PENDING and len(r["layers"]) > 0 for r in on) >= 2  # real work
    for a, b in zip(on, off, strict=True):
        assert "saliency" not in a  # decompose drops the map
        assert (a["status"], a["reasons"], a["verdict"]) == (
            b["status"],
            b["reasons"],
            b["verdict"],
        )
        assert a["layers"] == b["layers"]  # the packed stacks, byte for byte
        assert without_seconds(a["trace"]) == without_seconds(b["trace"])


def test_the_stage_writes_the_tools_own_map_and_passes_other_rows(lake):
    from liwi.imageio import to_float
    from liwi.priors.salient import SalientPrior

    paths = sorted(lake.glob("*.jpg"))
    rows = batch_to_rows(ReadDecode(str(lake))(rows_to_batch([{"path": str(p)} for p in paths])))
    rows[1]["image"] = np.zeros((0, 0, 3), np.uint8)  # a row whose image is unusable
    rows.append({**rows[0], "status": SKIPPED})  # resumed: not this stage's business
    out = batch_to_rows(Segment()(rows_to_batch(rows)))
    prior = SalientPrior()
    want = prior.maps(to_float(rows[0]["image"]))[0]
    assert out[0]["saliency"].shape == (320, 320) and out[0]["saliency"].dtype == np.float32
    np.testing.assert_array_equal(out[0]["saliency"], want)  # onnx on a CPU: exactly the tool's
    assert out[1]["status"] == ERROR and "segment:" in out[1]["reasons"]
    assert out[3]["status"] == SKIPPED and out[3]["saliency"].size == 0
    assert all("t_segment" in r for r in out)


def test_the_batched_torch_trunk_matches_onnx_per_image(lake):
    from liwi.imageio import decode_rgb, to_float
    from liwi.priors.salient import SalientPrior

    images = [to_float(decode_rgb(p.read_bytes())) for p in sorted(lake.glob("*.jpg"))]
    prior = SalientPrior(device="cpu")
    onnx = prior.fused_maps(images, backend="onnx")
    batched = prior.fused_maps(images, backend="torch")  # one forward pass, 3 images
    assert batched.shape == onnx.shape == (3, 320, 320)
    np.testing.assert_allclose(batched, onnx, atol=TRUNK_ATOL)


@pytest.mark.gpu
def test_on_a_gpu_the_stage_runs_one_batched_pass_within_tolerance(lake):
    from liwi.imageio import decode_rgb, to_float
    from liwi.priors.salient import SalientPrior

    images = [to_float(decode_rgb(p.read_bytes())) for p in sorted(lake.glob("*.jpg"))]
    gpu = SalientPrior(device="cuda").fused_maps(images)  # auto: torch on cuda
    cpu = SalientPrior(device="cpu").fused_maps(images)  # auto: onnx on cpu
    np.testing.assert_allclose(gpu, cpu, atol=TRUNK_ATOL)


@pytest.mark.gpu
def test_the_stage_on_a_gpu_matches_its_cpu_maps(lake):
    paths = sorted(lake.glob("*.jpg"))
    batch = ReadDecode(str(lake))(rows_to_batch([{"path": str(p)} for p in paths]))
    gpu, cpu = Segment(device="cuda"), Segment(device="cpu")
    got, want = batch_to_rows(gpu(batch)), batch_to_rows(cpu(batch))
    assert gpu.prior.device == "cuda" and gpu.prior._torch_trunk is not None  # batched torch
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a["saliency"], b["saliency"], atol=TRUNK_ATOL)


def test_the_stage_runs_only_for_the_salient_agent_segmenter():
    base = DecomposeConfig(input="in", output="out")
    names = [c.cls.name for c in stage_calls(base)]
    assert names == ["read_decode", "segment", "decompose", "curate", "to_rows", "write"]
    for update in (
        {"segment_stage": False},
        {"decomposer": "identity"},
        {"agent": {"tools": {"segment": {"backend": "classical"}}}},
    ):
        config = DecomposeConfig.model_validate(base.model_dump() | update)
        assert Segment not in [c.cls for c in stage_calls(config)], update


def test_a_gpu_segment_stage_gets_its_own_pool_and_the_cpu_stages_fuse_around_it():
    stages = {
        "segment": {"batch_size": 32, "min_actors": 1, "max_actors": 8, "num_gpus": 0.25},
    }
    config = DecomposeConfig(input="in", output="out", fuse=True, stages=stages)
    pools = plan(config, stage_calls(config))
    assert [p.cls for p in pools] == [ReadDecode, Segment, Pipeline, WriteParts]
    assert [cls for cls, _ in pools[2].kwargs["stages"]] == [Decompose, Curate, ToRows]
    assert pools[1].resources.num_gpus == 0.25 and pools[1].resources.batch_size == 32
    assert pools[2].resources == config.stage_resources()["decompose"]


def test_decompose_uses_the_precomputed_map_instead_of_running_the_network(lake):
    rows = decompose(lake, True)[:1]
    config = DecomposeConfig(input=str(lake), output=str(lake / "o"), runner="loop")
    path = sorted(lake.glob("*.jpg"))[0]
    read = batch_to_rows(ReadDecode(str(lake))(rows_to_batch([{"path": str(path)}])))[0]
    blank = {**read, "saliency": np.zeros((320, 320), np.float32)}  # "nothing is salient"
    kwargs = Decompose.options(config, None)
    out = batch_to_rows(Decompose(**kwargs)(rows_to_batch([blank])))[0]
    first = json.loads(out["trace"])[0]
    assert first["tool"] == "segment"
    assert without_seconds(out["trace"]) != without_seconds(rows[0]["trace"])


def test_an_unfused_ray_run_hands_the_map_between_pools_and_matches_the_loop(
    tmp_path, lake, ray_local
):
    """The GPU config's shape on CPUs: segment in a pool of its own, its map crossing Ray
    Data's blocks to decompose; the tables equal a loop run without the stage."""
    from liwi.add.driver import run
    from liwi.schema import row_to_stack
    from liwi.table import read_table

    quarter = {"min_actors": 1, "max_actors": 1, "num_cpus": 0.25}
    stages = {  # 1.75 CPUs in all: fits the session's 2-CPU Ray
        name: {"batch_size": 4, **quarter} for name in ("read_decode", "segment", "curate")
    } | {
        "to_rows": {"batch_size": 4, **quarter},
        "decompose": {"batch_size": 2, "min_actors": 1, "max_actors": 1, "num_cpus": 0.5},
        "write": {"batch_size": 16, **quarter},
    }
    common = {"input": str(lake), "max_side": 96, "report": False, "progress": False}
    on = run(DecomposeConfig(output=str(tmp_path / "ray"), fuse=False, stages=stages, **common))
    off = run(
        DecomposeConfig(output=str(tmp_path / "loop"), runner="loop", segment_stage=False, **common)
    )
    assert on["counts"] == off["counts"] and on["stage_seconds"]["segment"] > 0
    tables = {}
    for name in ("ray", "loop"):
        rows = read_table(str(tmp_path / name / "layers")).to_pylist()
        tables[name] = {r["sample_id"]: row_to_stack(r) for r in rows}
    assert set(tables["ray"]) == set(tables["loop"]) and tables["ray"]
    for sid, a in tables["ray"].items():
        b = tables["loop"][sid]
        np.testing.assert_array_equal(a.background, b.background)
        assert len(a.objects) == len(b.objects)
        for x, y in zip(a.objects, b.objects, strict=True):
            np.testing.assert_array_equal(x.rgba, y.rgba)
            np.testing.assert_array_equal(x.shadow, y.shadow)
