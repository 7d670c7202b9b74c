"""Model v2 fine-tuning: the trunk cache, simulated prompts, a few steps, a loadable checkpoint."""

import json

import numpy as np
import torch

from liwi.model import build_model
from liwi.model.u2layernet import U2LayerNet
from liwi.synth.procedural import write_scene_table
from liwi.training.finetune import FinetuneConfig, make_batch, run
from liwi.training.trunk_cache import FIELDS, load


def test_cache_then_steps_give_a_v2_checkpoint_with_a_frozen_trunk(tmp_path):
    table = write_scene_table(str(tmp_path / "table"), n=10, size=40, seed=3)
    cfg = FinetuneConfig(
        tables=[table],
        cache=str(tmp_path / "cache"),
        out=str(tmp_path / "run" / "v2.pt"),
        crop=64,
        steps=3,
        batch_size=2,
        val_every=2,
        val_samples=2,
        threads=1,
    )
    path = run(cfg, progress=False)
    train = load(tmp_path / "cache" / "train")
    n = train["meta"]["problems"]
    assert n >= 8 and all(train[k].shape == (n, c, 320, 320) for k, c in FIELDS.items())
    assert train["saliency"].max() > 0  # the trunk's maps, not zeros
    model = build_model(checkpoint=path)
    assert isinstance(model, U2LayerNet)
    fresh = build_model(model.config)  # the trunk in the checkpoint is the pretrained one
    from liwi.model.u2layernet import load_trunk_weights
    from liwi.weights import resolve

    load_trunk_weights(fresh.trunk, str(resolve("u2netp")))
    for k, v in fresh.trunk.state_dict().items():
        assert torch.equal(v, model.trunk.state_dict()[k]), k
    meta = torch.load(path, weights_only=True)["meta"]
    assert meta["steps"] == 3 and "shadow_attenuation" in meta["final_val"]
    hist = [json.loads(x) for x in path.with_suffix(".history.jsonl").read_text().splitlines()]
    assert [h["kind"] for h in hist].count("train") == 3
    # a second run reuses the cache (same tables, size, weight): its files are not rewritten
    stamp = (tmp_path / "cache" / "train" / "image.npy").stat().st_mtime_ns
    run(cfg.model_copy(update={"steps": 1}), progress=False)
    assert (tmp_path / "cache" / "train" / "image.npy").stat().st_mtime_ns == stamp


def test_simulated_prompts_point_at_the_object(tmp_path):
    n, s = 6, 64
    rng = np.random.default_rng(0)
    alpha = np.zeros((n, 1, s, s), np.uint8)
    alpha[:, :, 20:40, 20:40] = 255
    cache = {
        "image": rng.integers(0, 255, (n, 3, s, s), dtype=np.uint8),
        "alpha": alpha,
        "color": np.zeros((n, 3, s, s), np.uint8),
        "background": np.zeros((n, 3, s, s), np.uint8),
        "shadow": np.full((n, 3, s, s), 255, np.uint8),
        "saliency": np.repeat(alpha, 7, axis=1),
    }
    cfg = FinetuneConfig(tables=["x"], crop=64, degrade_prob=0.5, prior_prompt_prob=0.5)
    batch = make_batch(cache, list(range(n)), cfg, np.random.default_rng(1), train=False)
    mask = batch["prompt"][:, 0]
    assert batch["prompt"][:, 1:].abs().sum() == 0  # mask prompts only
    inside = mask[:, 25:35, 25:35].mean(dim=(1, 2))
    outside = mask[:, :10, :10].mean(dim=(1, 2))
    assert bool((inside > 0.5).all()) and bool((outside == 0).all())
    assert 0 < float(batch["degraded"].sum()) < n


def test_the_gpu_recipe_trains_a_trunk_read_from_int8_parts(tmp_path):
    """The GPU recipe on this CPU: trunk from int8 parts, cache by the torch trunk, every
    weight trained, the trunk at ``lr × trunk_lr_scale``; the predictor then runs the
    checkpoint's own trunk instead of feeding it the prior's maps."""
    from liwi.model import int8_state
    from liwi.model.u2layernet import U2Trunk, load_trunk_weights
    from liwi.predictor import Predictor
    from liwi.training.finetune import param_groups
    from liwi.weights import resolve

    trunk = U2Trunk("u2netp")
    load_trunk_weights(trunk, str(resolve("u2netp")))
    int8_state.save_parts(int8_state.pack(trunk.state_dict()), tmp_path / "trunk", xz=True)
    start = int8_state.unpack(int8_state.load_parts(tmp_path / "trunk"))
    table = write_scene_table(str(tmp_path / "table"), n=10, size=40, seed=3)
    cfg = FinetuneConfig(
        tables=[table],
        cache=str(tmp_path / "cache"),
        out=str(tmp_path / "run" / "v2.pt"),
        model={"train_trunk": True},
        trunk_state=str(tmp_path / "trunk"),
        trunk_lr_scale=0.1,
        crop=64,
        steps=2,
        batch_size=2,
        val_every=2,
        val_samples=2,
        threads=1,
    )
    path = run(cfg, progress=False)
    assert load(tmp_path / "cache" / "train")["saliency"].max() > 0
    model = build_model(checkpoint=path)
    assert model.config.train_trunk
    moved = [
        not torch.equal(v, start[k]) for k, v in model.trunk.state_dict().items() if v.dim() > 1
    ]
    # the trunk trained (two steps at a 0.1 × learning rate: the first stages' gradients
    # can still be below what moves a float32 weight)
    assert sum(moved) > 0.8 * len(moved)
    groups = param_groups(model, cfg)
    assert [g["lr_scale"] for g in groups] == [1.0, 0.1]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert not Predictor(model, device="cpu").reads_saliency
