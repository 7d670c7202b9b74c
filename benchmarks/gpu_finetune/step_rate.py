"""Fine-tuning steps per second of the U²-Net preset on a GPU, by where batches are built.

The first GPU run (RESULTS, eighth session) trained at 2.9 steps/s (batch 16, 288 px) on
an H200 — far below what the GPU computes. This measures, side by side in one process:

* ``cpu-batches``: crops and simulated prompts built on the CPU, then moved (that run);
* ``gpu-batches``: the uint8 crops moved first, the prompt simulation on the GPU;
* ``gpu-only``: one prepared batch reused, the training step alone (the ceiling).

Random uint8 data and a randomly initialised trunk: the timing does not depend on the
weights, and nothing needs to travel. ``python benchmarks/gpu_finetune/step_rate.py``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def fake_cache(n: int, size: int, seed: int = 0) -> dict:
    """A trunk cache's arrays with one square object per problem."""
    rng = np.random.default_rng(seed)
    cache = {
        k: rng.integers(0, 256, (n, ch, size, size), dtype=np.uint8)
        for k, ch in (("image", 3), ("color", 3), ("background", 3), ("shadow", 3), ("saliency", 7))
    }
    alpha = np.zeros((n, 1, size, size), np.uint8)
    for i in range(n):
        y, x, s = (int(v) for v in rng.integers(0, size // 2, 3))
        alpha[i, :, y : y + s + 16, x : x + s + 16] = 255
    cache["alpha"] = alpha
    return cache


def main() -> int:
    import torch

    from liwi.model.u2layernet import U2LayerNet, U2LayerNetConfig
    from liwi.training.finetune import V2_LOSS, FinetuneConfig, make_batch, param_groups
    from liwi.training.step import train_step

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--trunk", default="u2net")
    ap.add_argument("--n", type=int, default=256, help="problems in the fake cache")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=288)
    ap.add_argument("--steps", type=int, default=25, help="timed steps per variant")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cache = fake_cache(args.n, 320)
    cfg = FinetuneConfig(tables=["-"], crop=args.crop, batch_size=args.batch)
    model = U2LayerNet(U2LayerNetConfig(trunk=args.trunk, train_trunk=True)).to(args.device)
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=1e-4)
    rng = np.random.default_rng(0)

    def idx() -> list[int]:
        return [int(i) for i in rng.integers(0, args.n, args.batch)]

    fixed = make_batch(cache, idx(), cfg, rng, True, True, args.device)
    variants = {
        "cpu-batches": lambda: make_batch(cache, idx(), cfg, rng, True, True, "cpu"),
        "gpu-batches": lambda: make_batch(cache, idx(), cfg, rng, True, True, args.device),
        "gpu-only": lambda: fixed,
    }
    result: dict = {"device": args.device, "trunk": args.trunk, "batch": args.batch}
    result["crop"] = args.crop
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    for name, batches in variants.items():
        for _ in range(3):  # warm-up: cuDNN autotuning, allocator
            train_step(model, opt, batches(), V2_LOSS)
        build = step = 0.0
        for _ in range(args.steps):
            t0 = time.perf_counter()
            batch = batches()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            train_step(model, opt, batch, V2_LOSS)  # returns floats: synchronised
            t2 = time.perf_counter()
            build, step = build + t1 - t0, step + t2 - t1
        total = build + step
        result[name] = {
            "steps_per_s": round(args.steps / total, 2),
            "batch_ms": round(1000 * build / args.steps, 1),
            "step_ms": round(1000 * step / args.steps, 1),
        }
        print(name, result[name], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
