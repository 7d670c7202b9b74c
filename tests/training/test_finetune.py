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
