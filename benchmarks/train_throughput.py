"""Training throughput: samples/s with 1 and 2 Ray Train CPU workers, and the data-wait share.

    python benchmarks/train_throughput.py [--steps 40] [--crop 128] [--preset cpu-small]

Both runs use the same per-worker batch (weak scaling) and one torch thread per worker,
so on a 2-core machine the ideal speed-up is 2×. The numbers are read back from the
MLflow run (``perf/samples_per_s``: global samples per second of step time;
``perf/data_wait_fraction``: the share of step time a worker waited for its next batch
from Ray Data), skipping the first logging window (warm-up). Results go to stdout as
Markdown and JSON; paste them into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def measure(table: str, workers: int, args, tmp: Path) -> dict[str, float]:
    from liwi import tracking
    from liwi.training.distributed import TrainConfig, run

    cfg = TrainConfig.from_dict(
        {
            "tables": [table],
            "name": f"throughput-{workers}",
            "storage_path": str(tmp / "ray"),
            "preset": args.preset,
            "data": {"crop": args.crop},
            "steps": args.steps,
            "batch_size": args.batch_size,
            "log_every": args.log_every,
            "val_every": args.steps,
            "val_samples": 4,
            "checkpoint_every": args.steps,
            "scaling": {"num_workers": workers, "torch_threads": 1, "data_cpus": 0.5},
            "tracking": {
                "tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
                "experiment": "throughput",
                "registered_model": None,
                "system_metrics": False,
                "image_every": 0,
            },
        }
    )
    t0 = time.perf_counter()
    result = run(cfg, register=False)
    wall = time.perf_counter() - t0
    uri = cfg.tracking.tracking_uri
    sps = [v for _, v in tracking.metric_history(result.mlflow_run_id, "perf/samples_per_s", uri)]
    wait = [
        v for _, v in tracking.metric_history(result.mlflow_run_id, "perf/data_wait_fraction", uri)
    ]
    steady_sps, steady_wait = sps[1:] or sps, wait[1:] or wait
    return {
        "workers": workers,
        "samples_per_s": sum(steady_sps) / len(steady_sps),
        "data_wait_fraction": sum(steady_wait) / len(steady_wait),
        "wall_s": wall,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--preset", default="cpu-small")
    p.add_argument("--samples", type=int, default=48, help="synthetic rows (train split)")
    args = p.parse_args()

    import ray
    from ray.data import DataContext

    from liwi.synth.job import SynthConfig
    from liwi.synth.job import run as synth

    tmp = Path(tempfile.mkdtemp(prefix="liwi-throughput-"))
    synth(SynthConfig(out=str(tmp / "synth"), n=args.samples, size=160, seed=0, progress=False))
    table = str(tmp / "synth" / "table")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    DataContext.get_current().enable_progress_bars = False
    rows = [measure(table, w, args, tmp) for w in (1, 2)]
    ray.shutdown()
    speedup = rows[1]["samples_per_s"] / rows[0]["samples_per_s"]
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "load_average_1m": os.getloadavg()[0],
        "config": vars(args),
        "rows": rows,
        "speedup_2_vs_1": speedup,
    }
    print("| workers | samples/s | data-wait fraction | wall s |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['samples_per_s']:.2f} | {r['data_wait_fraction']:.3f} "
            f"| {r['wall_s']:.0f} |"
        )
    print(f"\nspeed-up 2 vs 1 workers: {speedup:.2f}×\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
