"""ADD at scale: wall time, driver peak RSS, first output row, re-run cost vs lake size.

    python benchmarks/add_scale.py --sizes 10000 100000 --lakes local s3 [--json out.json]

For each lake kind (a local folder, a bucket on a SeaweedFS S3 server started here on
127.0.0.1) and each size, it generates that many small PNGs (``--side`` px, distinct
content), then runs ``liwi decompose`` with the identity decomposer (``decomposer:
identity``: the photo is a one-layer stack; what is measured is the job itself: listing,
resumption, reads, decode, row encoding, Parquet writes) on a local Ray with ``--cpus``
CPUs, twice: the first run, then the same command on the finished output (resume).

Each run is its own process (``python -c`` around ``liwi.add.driver.run``), so its
``ru_maxrss`` is the driver's peak RSS (Ray's raylet and workers are other processes).
"first row" is from the start of ``run`` to the first writer tally with rows (Ray start-up
included). Targets (issue 14): 100k/10k wall ≤ 11×, driver RSS 100k ≤ 1.5× 10k, first row
flat, re-run of a finished lake ≤ 5 % of the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

UPLOAD_THREADS = 8  # parallel PUTs when filling the S3 lake (SeaweedFS on 127.0.0.1)

RUN = """
import json, resource, sys, time
from liwi.add.driver import DecomposeConfig, run
t0 = time.perf_counter()
summary = run(DecomposeConfig.model_validate(json.loads(sys.argv[1])))
summary["process_seconds"] = time.perf_counter() - t0
summary["driver_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(summary))
"""


def image_bytes(i: int, side: int) -> bytes:
    """A small PNG whose content depends on ``i`` (distinct files, no duplicates)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(i)
    img = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def fill_lake(uri: str, n: int, side: int) -> float:
    """Write ``n`` images under ``uri`` in 100 folders; returns seconds."""
    from liwi.lake import Lake

    lake = Lake.from_uri(uri)
    t0 = time.perf_counter()

    def put(i: int) -> None:
        lake.write_bytes(lake.path(f"{i % 100:02d}", f"img_{i:07d}.png"), image_bytes(i, side))

    if lake.scheme == "file":
        for i in range(n):
            put(i)
    else:
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(pool.map(put, range(n), chunksize=256))
    return time.perf_counter() - t0


def run_job(lake: str, out: str, cpus: int, env: dict[str, str]) -> dict:
    config = {
        "input": lake,
        "output": out,
        "runner": "ray",
        "decomposer": "identity",
        "max_side": 64,
        "report": False,
        "progress": False,
        "stages": {
            # one fused actor reads, decodes and encodes; one writer (≤ 2 logical CPUs)
            "decompose": {"batch_size": 64, "min_actors": 1, "max_actors": 1, "num_cpus": 1.0},
            "write": {"batch_size": 1024, "min_actors": 1, "max_actors": 1, "num_cpus": 0.5},
        },
        "ray": {"num_cpus": cpus, "object_store_mb": 512},
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"job failed ({proc.returncode}): {proc.stderr[-3000:]}")
    s = json.loads(lines[-1][len("RESULT ") :])
    return {
        "process_wall_s": round(wall, 2),  # python start + imports + run
        "run_s": round(s["process_seconds"], 2),
        "first_row_s": None
        if s["first_row_seconds"] is None
        else round(s["start_seconds"] + s["first_row_seconds"], 2),
        "driver_peak_rss_mb": round(s["driver_peak_rss_mb"], 1),
        "counts": s["counts"],
        "unaccounted": s["unaccounted"],
        "ids_written_twice": len(s["ids_written_twice"]),
        "parts": None,
    }


def count_parts(out: str) -> int:
    from liwi.lake import Lake
    from liwi.table import list_parts

    lake = Lake.from_uri(out)
    return sum(len(list_parts(lake.child(t))) for t in ("layers", "rejects", "errors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--lakes", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    parser.add_argument("--side", type=int, default=32, help="image side in pixels")
    parser.add_argument("--cpus", type=int, default=2, help="logical CPUs of the local Ray")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    tmp = Path(tempfile.mkdtemp(prefix="add_scale_"))
    env["RAY_TMPDIR"] = str(tmp / "ray")
    results: list[dict] = []
    server = None
    try:
        for kind in args.lakes:
            base = str(tmp / "data")
            if kind == "s3":
                from liwi.testing.s3_server import SeaweedS3

                server = SeaweedS3().start()
                env.update(server.env())
                os.environ.update(server.env())
                base = "s3://bench"
            for n in args.sizes:
                lake, out = f"{base}/lake{n}", f"{base}/out{n}"
                fill_s = fill_lake(lake, n, args.side)
                first = run_job(lake, out, args.cpus, env)
                first["parts"] = count_parts(out)
                again = run_job(lake, out, args.cpus, env)
                row = {
                    "lake": kind,
                    "images": n,
                    "fill_s": round(fill_s, 1),
                    "first": first,
                    "rerun": again,
                    "rerun_fraction": round(again["run_s"] / first["run_s"], 4),
                    "load_avg": os.getloadavg(),
                }
                results.append(row)
                print(json.dumps(row), flush=True)
                if kind == "local":  # free the disk before the next size
                    shutil.rmtree(tmp / "data", ignore_errors=True)
            if server is not None:
                server.stop()
                server = None
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "date": time.ctime()}
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))


if __name__ == "__main__":
    main()
