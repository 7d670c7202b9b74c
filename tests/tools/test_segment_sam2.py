"""SAM 2 adapter with a tiny randomly initialised model built from the packaged config."""

import numpy as np
import pytest

from liwi.tools.base import ToolError
from liwi.tools.segment import SegmentInput

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")

from liwi.tools.segment_sam2 import DEFAULT_CONFIG, Sam2Segmenter  # noqa: E402

# Shrink sam2.1_hiera_t to ~2 M parameters at 256 px so a CPU forward takes well under 1 s.
TINY = [
    "++model.image_size=256",
    "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.stages=[1,2,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[4]",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
    "++model.image_encoder.neck.d_model=32",
    "++model.image_encoder.neck.position_encoding.num_pos_feats=32",
    "++model.memory_attention.d_model=32",
    "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.d_model=32",
    "++model.memory_attention.layer.dim_feedforward=32",
    "++model.memory_attention.layer.self_attention.embedding_dim=32",
    "++model.memory_attention.layer.cross_attention.embedding_dim=32",
    "++model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
    "++model.memory_encoder.out_dim=16",
]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    model = build_sam2(DEFAULT_CONFIG, None, device="cpu", hydra_overrides_extra=TINY)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("sam2") / "tiny.pt"
    torch.save({"model": state}, path)
    return path, state


@pytest.fixture(scope="module")
def tool(tiny_checkpoint):
    seg = Sam2Segmenter(checkpoint=f"file://{tiny_checkpoint[0]}", hydra_overrides=TINY)
    seg.setup()
    return seg


def image(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 0.3, np.float32)
    img[30:70, 40:90] = (0.9, 0.2, 0.1)
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)


def test_weights_load_exactly_from_a_lake_uri(tool, tiny_checkpoint):
    _, state = tiny_checkpoint
    loaded = tool.model.state_dict()
    assert loaded.keys() == state.keys()
    for key in list(state)[:: max(1, len(state) // 20)]:
        assert torch.equal(loaded[key].cpu(), state[key]), key
    assert tool.model.image_size == 256


def test_box_prompt_returns_ranked_masks(tool):
    img = image()
    out = tool(SegmentInput(img, box=(40, 30, 90, 70)))
    assert len(out.candidates) >= 1
    scores = [c.score for c in out.candidates]
    assert scores == sorted(scores, reverse=True)
    for c in out.candidates:
        assert c.mask.shape == img.shape[:2] and c.mask.dtype == np.float32
        assert set(np.unique(c.mask)) <= {0.0, 1.0}
        assert 0.0 <= c.score <= 1.0
        assert c.area == pytest.approx(float(c.mask.mean()))
    single = tool(SegmentInput(img, points=[(60.0, 50.0)], point_labels=[1]), {"multimask": False})
    assert len(single.candidates) <= 1 or single.candidates[0].mask.shape == img.shape[:2]


def test_automatic_mode_runs_on_a_grid(tool):
    params = {
        "points_per_side": 4,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "min_area": 0.0,
        "max_area": 1.0,
    }
    out = tool(SegmentInput(image()), params)  # seeded random weights: ≥ 1 proposal
    assert 1 <= len(out.candidates) <= 3
    assert all(c.mask.shape == (96, 128) and c.mask.any() for c in out.candidates)
    with pytest.raises(ToolError, match="no mask"):  # nothing fits a 0.1% area window
        tool(SegmentInput(image()), {**params, "min_area": 0.5, "max_area": 0.501})


def test_strict_loading_rejects_a_mismatched_checkpoint(tiny_checkpoint, tmp_path):
    _, state = tiny_checkpoint
    broken = dict(state)
    dropped = next(iter(broken))
    del broken[dropped]
    broken["not_a_layer.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pt"
    torch.save({"model": broken}, bad)
    with pytest.raises(ToolError, match="missing 1 keys") as err:
        Sam2Segmenter(checkpoint=str(bad), hydra_overrides=TINY).setup()
    assert dropped in str(err.value) and "unexpected 1" in str(err.value)


def test_bad_checkpoints_and_configs_are_refused(tmp_path):
    with pytest.raises(ToolError, match="needs a checkpoint"):
        Sam2Segmenter().setup()
    with pytest.raises(ToolError, match="not found"):
        Sam2Segmenter(checkpoint=str(tmp_path / "nope.pt")).setup()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ToolError, match="not a readable torch checkpoint"):
        Sam2Segmenter(checkpoint=str(junk), hydra_overrides=TINY).setup()
    with pytest.raises(ToolError, match="cannot build SAM 2"):
        Sam2Segmenter(checkpoint=str(junk), model_cfg="configs/nope.yaml").setup()
