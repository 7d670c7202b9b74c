"""ADD throughput: plain loop vs Ray Data (1 and 2 CPU actors), stage costs, codec floor.

    python benchmarks/add_throughput.py --images 16 --size 512 [--json out.json]

Builds a temporary lake of ``--images`` photos with the longer side ``--size`` px (the
bundled scikit-image photos plus procedural scenes), then runs the same ADD stages with
the default classical tools:

* (a) ``runner: loop`` – one Python process, stage after stage;
* (b) Ray Data, the stages fused in an actor pool of 1 and of 2 CPU actors (plus the
  writer), on a local in-process Ray with ``--cpus`` logical CPUs (started once, before
  the timed runs, so ``ray.init`` is not counted; actor start-up is);

and reports images/s, the speed-up over the loop, the cost of each stage (seconds of
stage work per image, summed over workers) and the orchestration overhead: Ray's wall
time against the ideal ``sum of stage costs / actors``. The codec floor is decode +
PNG-encode of the produced layers, per image, in one process. Targets (issue 3): Ray
Data on 2 cores ≥ 1.6× the plain loop; orchestration overhead ≤ 25%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def make_lake(root: Path, n: int, size: int) -> None:
    from liwi.sample_photos import bundled_photos, procedural_photo

    root.mkdir(parents=True, exist_ok=True)
    photos = list(bundled_photos(size).items())
    for i in range(n):
        if i < len(photos):
            name, data = photos[i]
            (root / f"{i:03d}_{name}").write_bytes(data)
        else:
            (root / f"{i:03d}_scene.jpg").write_bytes(procedural_photo(i, size, 1 + i % 2))


def job(lake: Path, out: Path, runner: str, actors: int, size: int, limit: int | None = None):
    from liwi.add.driver import DecomposeConfig, run

    stages = {
        # 2 actors × 0.85 CPU + writer 0.25 ≤ 2 logical CPUs
        "decompose": {
            "batch_size": 1,
            "min_actors": actors,
            "max_actors": actors,
            "num_cpus": 0.85,
        },
        "write": {"batch_size": 8, "min_actors": 1, "max_actors": 1, "num_cpus": 0.25},
    }
    config = DecomposeConfig.from_dict(
        {"runner": runner, "max_side": size, "stages": stages, "report": False, "progress": False},
        input=str(lake),
        output=str(out),
        limit=limit,
    )
    t0 = time.perf_counter()
    summary = run(config)
    summary["measured_wall"] = time.perf_counter() - t0
    return summary


def codec_floor(out: Path) -> float:
    """Seconds per image to decode the source and PNG-encode its layers (one process)."""
    from liwi.imageio import decode_rgb, decode_rgba, encode_png
    from liwi.table import read_table

    rows = (
        read_table(str(out / "layers")).to_pylist() + read_table(str(out / "rejects")).to_pylist()
    )
    rows = [r for r in rows if r["background"] is not None]
    if not rows:
        return float("nan")
    t0 = time.perf_counter()
    for r in rows:
        decode_rgb(r["image"])
        encode_png(decode_rgb(r["background"]))
        for o in r["objects"]:
            encode_png(decode_rgba(o["rgba"]))
            encode_png(decode_rgba(o["shadow"]))
    # decoding the layer PNGs is only a way to get arrays to encode: subtract it
    t_enc = time.perf_counter() - t0
    t1 = time.perf_counter()
    for r in rows:
        decode_rgb(r["background"])
        for o in r["objects"]:
            decode_rgba(o["rgba"])
            decode_rgba(o["shadow"])
    t_layers_decode = time.perf_counter() - t1
    return (t_enc - t_layers_decode) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--cpus", type=int, default=2, help="logical CPUs of the local Ray")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import ray

    tmp = Path(tempfile.mkdtemp(prefix="add-bench-"))
    lake = tmp / "lake"
    make_lake(lake, args.images, args.size)
    results: dict = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
        "load_average_before": os.getloadavg(),
        "images": args.images,
        "size": args.size,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    # warm the page cache and imports in this process, so the loop is not charged for them
    job(lake, tmp / "warm", "loop", 1, args.size, limit=1)

    loop = job(lake, tmp / "loop", "loop", 1, args.size)
    results["loop"] = loop
    t0 = time.perf_counter()
    from liwi.add.ray_adapter import start_local_ray

    start_local_ray(num_cpus=args.cpus, num_gpus=0, object_store_mb=512)
    results["ray_init_seconds"] = time.perf_counter() - t0
    for actors in (1, 2):
        results[f"ray_{actors}"] = job(lake, tmp / f"ray{actors}", "ray", actors, args.size)
    ray.shutdown()
    results["codec_floor_s_per_image"] = codec_floor(tmp / "loop")
    results["load_average_after"] = os.getloadavg()

    base = loop["images_per_second"]
    print(f"\nADD throughput, {args.images} photos at {args.size}px, {results['machine']}")
    print(
        f"load average before/after: {results['load_average_before']} / {results['load_average_after']}"
    )
    print("| run | images/s | speed-up vs loop | wall s | stage work s | overhead vs ideal |")
    print("|---|---|---|---|---|---|")
    for key, actors in (("loop", 1), ("ray_1", 1), ("ray_2", 2)):
        s = results[key]
        work = sum(s["stage_seconds"].values())
        ideal = work / actors
        overhead = s["wall_seconds"] / ideal - 1 if ideal else float("nan")
        s["overhead_vs_ideal"] = overhead
        print(
            f"| {key} | {s['images_per_second']:.3f} | {s['images_per_second'] / base:.2f}× | "
            f"{s['wall_seconds']:.1f} | {work:.1f} | {overhead:+.0%} |"
        )
    print("\nstage cost (s/image, loop):", json.dumps(loop["stage_seconds_per_image"]))
    print("stage cost (s/image, ray 2):", json.dumps(results["ray_2"]["stage_seconds_per_image"]))
    print(
        f"codec floor (decode + PNG-encode layers): {results['codec_floor_s_per_image']:.4f} s/image"
    )
    print(f"ray.init (not counted above): {results['ray_init_seconds']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
