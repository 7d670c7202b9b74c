"""Memory budget for small files that decode huge, and their effect on normal requests.

    python benchmarks/memory_budget.py [--json benchmarks/results/memory_budget.json]

1. Two hostile-but-small PNGs (one flat colour): 3999×3999 (just under the API's 16 MP
   limit) and 7999×7999 (over it).
2. ``liwi predict`` on each in a fresh process: its peak RSS (``ru_maxrss`` of the child).
3. The Serve app (serve/config.yaml, one model replica, 127.0.0.1): the peak RSS the Ray
   processes gain while answering one request for each PNG (the process tree sampled at
   20 Hz, against its size just before that request; sum over processes and the largest
   single process's gain).
4. Eight normal requests (a 512² photo) sent at once, alone, then the same eight beside
   six heavy ones (the 3999² PNG) sent at once: the normal requests' p50 both times.

Every request goes to 127.0.0.1 and the run is bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

SIDES = (3999, 7999)  # hostile PNG sides (px): under and over the API's 16 MP limit
NORMAL, HEAVY = 8, 6  # requests in the mixed load
SAMPLE_S = 0.05  # RSS sampling period of the Serve process tree
PORT = 8131  # 127.0.0.1 only


def tiny_png(side: int) -> bytes:
    """A flat-colour PNG of side×side: a few KB on disk, side² × 3 bytes decoded."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side), (120, 140, 90)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def predict_peak_rss_mb(path: Path, out: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall time of ``liwi predict path`` in a fresh child process."""
    wrapper = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    )
    cmd = [sys.executable, "-c", wrapper, sys.executable, "-m", "liwi.cli", "predict"]
    cmd += [str(path), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(proc.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def per_process_rss(root=None) -> dict[int, float]:
    """RSS (MB) of every descendant of ``root`` (default: this process), by PID."""
    import psutil

    root = root or psutil.Process(os.getpid())
    sizes = {}
    for p in root.children(recursive=True):
        try:
            sizes[p.pid] = p.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return sizes


class TreeSampler:
    """Peak RSS of this process's descendants (the local Ray: raylet, workers, replicas)."""

    def __init__(self) -> None:
        import psutil

        self.root = psutil.Process(os.getpid())
        self.peak_sum = 0.0
        self.peak_by_pid: dict[int, float] = {}
        self._stop = threading.Event()

    def rss(self) -> tuple[float, dict[int, float]]:
        """Total RSS (MB) of the descendants and each one's, by PID."""
        sizes = per_process_rss(self.root)
        return sum(sizes.values()), sizes

    def __enter__(self) -> TreeSampler:
        def loop():
            while not self._stop.is_set():
                total, sizes = self.rss()
                self.peak_sum = max(self.peak_sum, total)
                for pid, mb in sizes.items():
                    self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0.0), mb)
                time.sleep(SAMPLE_S)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def post(url: str, png: bytes) -> tuple[int, float]:
    import requests

    t0 = time.perf_counter()
    resp = requests.post(
        url + "/v1/decompose",
        files={"image": ("x.png", png, "image/png")},
        data={"max_layers": "3", "format": "json"},
        timeout=300,
    )
    return resp.status_code, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from serve_latency import serve_app, serve_config, test_image

    from liwi.imageio import encode_png
    from liwi.serving.runner import start, stop

    out: dict = {"machine": os.uname().machine, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="liwi-mem-") as tmp:
        pngs = {side: tiny_png(side) for side in SIDES}
        out["png_bytes"] = {str(s): len(b) for s, b in pngs.items()}
        for side, data in pngs.items():
            path = Path(tmp) / f"flat{side}.png"
            path.write_bytes(data)
            rss, wall = predict_peak_rss_mb(path, Path(tmp) / "out")
            out[f"predict_{side}"] = {"peak_rss_mb": round(rss), "seconds": round(wall, 1)}
            print(f"liwi predict {side}²: peak RSS {rss:.0f} MB, {wall:.1f} s", flush=True)

        config = serve_config(PORT, [serve_app(None, 4, "liwi", "/")])
        start(config, num_cpus=4)
        url = f"http://127.0.0.1:{PORT}"
        try:
            normal = encode_png(test_image())
            post(url, normal)  # warm-up: the replica's first answer loads lazily
            for side, data in pngs.items():
                before_sum, _ = TreeSampler().rss()
                before = per_process_rss()
                with TreeSampler() as s:
                    status, secs = post(url, data)
                grown = max(
                    (s.peak_by_pid.get(pid, 0.0) - mb for pid, mb in before.items()), default=0.0
                )
                out[f"api_{side}"] = {
                    "status": status,
                    "seconds": round(secs, 2),
                    "tree_peak_gain_mb": round(s.peak_sum - before_sum),
                    "largest_process_gain_mb": round(grown),
                }
                print(f"API {side}²: {out[f'api_{side}']}", flush=True)
            with ThreadPoolExecutor(NORMAL) as pool:
                alone = [t for _, t in pool.map(lambda _: post(url, normal), range(NORMAL))]
            with ThreadPoolExecutor(NORMAL + HEAVY) as pool:
                heavy = [pool.submit(post, url, pngs[SIDES[0]]) for _ in range(HEAVY)]
                mixed = [pool.submit(post, url, normal) for _ in range(NORMAL)]
                beside = [f.result()[1] for f in mixed]
                heavy_codes = [f.result()[0] for f in heavy]
            out["normal_p50_alone_s"] = round(statistics.median(alone), 3)
            out["normal_p50_beside_heavy_s"] = round(statistics.median(beside), 3)
            out["ratio"] = round(out["normal_p50_beside_heavy_s"] / out["normal_p50_alone_s"], 2)
            out["heavy_status"] = heavy_codes
            print(json.dumps(out, indent=2))
        finally:
            stop()
    out["maxrss_self_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
