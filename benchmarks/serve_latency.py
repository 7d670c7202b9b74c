"""Serve latency, throughput, batching and autoscaling on 127.0.0.1 (run by hand).

    PYTHONPATH=platform python benchmarks/serve_latency.py [--model URI] [--quick]

1. In-process baseline: the Predictor called directly (decompose only, and the whole
   request path without HTTP: PNG decode → decompose → JSON encode), concurrency 1/4/8.
2. The Serve app over HTTP (format=json, 512×512), one model replica, concurrency 1/4/8:
   p50/p99 latency and throughput; Serve's added p50 = HTTP p50 − in-process path p50.
3. Batching on (max_batch_size 8) vs off (1) at concurrency 8.
4. Autoscaling: min 1 / max 2 replicas under bounded sustained load, then idle; the
   replica count and latencies over time go to a PNG plot.

Every load generator targets 127.0.0.1 and is bounded in requests and seconds. Results
print as Markdown (paste into benchmarks/RESULTS.md) and are saved as JSON next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "platform"))

SIZE = 512  # image side (pixels)
MAX_LAYERS = 3  # background + 2 objects
HOST = "127.0.0.1"


def test_image(size: int = SIZE, seed: int = 0) -> np.ndarray:
    """A synthetic photo: graded ground, two discs with soft shadows, mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([0.5 + 0.3 * yy, 0.55 + 0.2 * xx, 0.45 + 0.1 * yy * xx], axis=2)
    for cx, cy, r, col in [(0.35, 0.4, 0.15, (0.8, 0.2, 0.1)), (0.7, 0.6, 0.1, (0.1, 0.3, 0.8))]:
        shadow = np.exp(-(((xx - cx - 0.06) / (1.3 * r)) ** 2 + ((yy - cy - r) / (0.4 * r)) ** 2))
        img *= (1 - 0.5 * shadow)[..., None]
        disc = np.clip((r - np.hypot(xx - cx, yy - cy)) * size + 0.5, 0, 1)[..., None]
        img = disc * np.array(col) + (1 - disc) * img
    img += rng.normal(0, 0.01, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def summarize(latencies_s: list[float], wall_s: float, errors: int = 0) -> dict:
    ms = sorted(x * 1e3 for x in latencies_s)
    if not ms:
        return {"n": 0, "errors": errors}
    return {
        "n": len(ms),
        "errors": errors,
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))], 1),
        "throughput_rps": round(len(ms) / wall_s, 2),
    }


def run_load(fn, concurrency: int, n_requests: int, max_s: float) -> dict:
    """Call ``fn()`` ``n_requests`` times from ``concurrency`` threads (or until ``max_s``)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(n_requests))
    deadline = time.perf_counter() + max_s

    def worker():
        while time.perf_counter() < deadline:
            with lock:
                if next(counter, None) is None:
                    return
            t = time.perf_counter()
            ok = fn()
            dt = time.perf_counter() - t
            with lock:
                if ok:
                    latencies.append(dt)
                else:
                    errors[0] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    return summarize(latencies, time.perf_counter() - t0, errors[0])


# -- in-process ---------------------------------------------------------------------------


def bench_in_process(model_uri: str | None, png: bytes, levels, n: int, max_s: float) -> dict:
    import torch

    from liwi.imageio import decode_rgb
    from liwi.predictor import Predictor
    from liwi.serving.encoders import stack_to_json

    torch.set_num_threads(1)  # a model replica gets one CPU (num_cpus: 1 → 1 torch thread)
    predictor = Predictor.from_uri(model_uri, device="cpu")
    image = decode_rgb(png)
    predictor.decompose(image, max_layers=MAX_LAYERS)  # warm-up

    def predict_only():
        predictor.decompose(image, max_layers=MAX_LAYERS)
        return True

    def full_path():
        stack = predictor.decompose(decode_rgb(png), max_layers=MAX_LAYERS)
        json.dumps(stack_to_json(stack, {"uri": "bench"}))
        return True

    out = {}
    for c in levels:
        out[f"predict_c{c}"] = run_load(predict_only, c, n if c == 1 else 2 * n, max_s)
        out[f"path_c{c}"] = run_load(full_path, c, n if c == 1 else 2 * n, max_s)
        print(f"in-process c={c}: {out[f'predict_c{c}']} | path {out[f'path_c{c}']}", flush=True)
    return out


# -- Serve --------------------------------------------------------------------------------


def serve_config(model_uri, port, batch, autoscale=False) -> dict:
    from liwi.serving.runner import apply_overrides, load_serve_config

    config = load_serve_config(REPO / "serve" / "config.yaml", model_uri=model_uri, port=port)
    (app,) = config["applications"]
    for dep in app["deployments"]:
        if dep["name"] != "LiwiModel":
            continue
        dep["max_ongoing_requests"] = max(2 * batch, 8)
        dep["max_queued_requests"] = 256  # the benchmark measures latency, not shedding
        if autoscale:
            dep["autoscaling_config"] = {
                "min_replicas": 1,
                "initial_replicas": 1,
                "max_replicas": 2,
                "target_ongoing_requests": 2,  # low, so a load of 6 clearly wants 2 replicas
                "upscale_delay_s": 3,
                "downscale_delay_s": 15,
                "metrics_interval_s": 0.5,
                "look_back_period_s": 3,
            }
        else:
            dep.pop("autoscaling_config", None)
            dep["num_replicas"] = 1
    app["args"].update({"max_batch_size": batch, "batch_wait_timeout_s": 0.01})
    return apply_overrides(config)


def http_caller(url: str, png: bytes):
    import requests

    local = threading.local()

    def call() -> bool:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        resp = session.post(
            url + "/v1/decompose",
            files={"image": ("bench.png", png, "image/png")},
            data={"max_layers": str(MAX_LAYERS)},
            timeout=120,
        )
        return resp.status_code == 200

    return call


def bench_serve(model_uri, png, levels, n, max_s, port) -> dict:
    from liwi.serving.runner import base_url, start

    out = {}
    config = serve_config(model_uri, port, batch=8)
    start(config, num_cpus=4)
    call = http_caller(base_url(config), png)
    for _ in range(3):
        call()  # warm-up
    for c in levels:
        out[f"http_c{c}"] = run_load(call, c, n if c == 1 else 2 * n, max_s)
        print(f"serve (batch 8) c={c}: {out[f'http_c{c}']}", flush=True)
    # Batching off vs on at concurrency 8 (same replica count).
    out["batch_on_c8"] = out.get("http_c8")
    config = serve_config(model_uri, port, batch=1)
    start(config, num_cpus=4)
    for _ in range(2):
        call()
    out["batch_off_c8"] = run_load(call, 8, 2 * n, max_s)
    print(f"serve (batch 1) c=8: {out['batch_off_c8']}", flush=True)
    return out


def bench_autoscaling(model_uri, png, port, load_s, idle_s, plot_path: Path) -> dict:
    from ray import serve

    from liwi.serving.runner import base_url, start

    config = serve_config(model_uri, port, batch=4, autoscale=True)
    start(config, num_cpus=4)
    call = http_caller(base_url(config), png)
    call()
    samples: list[tuple[float, int]] = []  # (t, running replicas)
    events: list[tuple[float, float]] = []  # (t_done, latency_s)
    stop = threading.Event()
    t0 = time.perf_counter()

    def sampler():
        while not stop.is_set():
            dep = serve.status().applications["liwi"].deployments["LiwiModel"]
            running = sum(n for s, n in dep.replica_states.items() if str(s).endswith("RUNNING"))
            samples.append((time.perf_counter() - t0, running))
            time.sleep(0.5)

    def loader(until: float):
        while time.perf_counter() - t0 < until:
            t = time.perf_counter()
            ok = call()
            if ok:
                events.append((time.perf_counter() - t0, time.perf_counter() - t))

    threading.Thread(target=sampler, daemon=True).start()
    with ThreadPoolExecutor(6) as pool:  # bounded: 6 clients for load_s seconds
        for f in [pool.submit(loader, load_s) for _ in range(6)]:
            f.result()
    load_end = time.perf_counter() - t0
    # Idle: a trickle of one request every 2 s keeps latency visible while scaling down;
    # stop 8 s after the count is back to 1 (or at the idle cap).
    down_seen = None
    while time.perf_counter() - t0 < load_end + idle_s:
        t = time.perf_counter()
        if call():
            events.append((time.perf_counter() - t0, time.perf_counter() - t))
        time.sleep(2.0)
        now = time.perf_counter() - t0
        if down_seen is None and samples and samples[-1][0] > load_end and samples[-1][1] == 1:
            down_seen = now
        if down_seen is not None and now > down_seen + 8:
            break
    stop.set()
    time.sleep(0.6)
    plot_autoscaling(samples, events, load_end, plot_path)
    peak = max(n for _, n in samples)
    up_at = next((t for t, n in samples if n >= 2), None)
    down_at = next((t for t, n in samples if t > load_end and n == 1), None)
    return {
        "load_s": round(load_end, 1),
        "peak_replicas": peak,
        "scaled_up_at_s": None if up_at is None else round(up_at, 1),
        "back_to_1_at_s": None if down_at is None else round(down_at, 1),
        "requests": len(events),
        "p50_ms_1_replica": _p50([lat for t, lat in events if up_at is None or t < up_at]),
        "p50_ms_2_replicas": _p50(
            [lat for t, lat in events if up_at is not None and up_at + 3 < t < load_end]
        ),
        "plot": str(plot_path.relative_to(REPO)),
    }


def _p50(xs):
    return round(statistics.median(xs) * 1e3, 1) if xs else None


def plot_autoscaling(samples, events, load_end, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax1 = plt.subplots(figsize=(9, 4.2), dpi=110)
    ts, ns = zip(*samples, strict=True) if samples else ((), ())
    ax1.step(ts, ns, where="post", color="tab:blue", lw=2, label="running model replicas")
    ax1.set_ylim(0, 3)
    ax1.set_yticks([0, 1, 2, 3])
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("replicas", color="tab:blue")
    ax1.axvspan(0, load_end, color="tab:orange", alpha=0.08, label="6 concurrent clients")
    ax2 = ax1.twinx()
    if events:
        et, el = zip(*events, strict=True)
        ax2.scatter(et, [x * 1e3 for x in el], s=8, color="tab:red", alpha=0.6, label="latency")
    ax2.set_ylabel("request latency (ms)", color="tab:red")
    ax2.set_ylim(bottom=0)
    lines = ax1.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax1.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right", fontsize=8)
    ax1.set_title("LiWi Serve autoscaling: 1 → 2 → 1 model replicas (512×512, JSON)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def default_model(tmp: Path) -> str | None:
    """The shipped model if present, else a random one of the same architecture."""
    from liwi.predictor import DEFAULT_MODEL

    if DEFAULT_MODEL.is_file():
        return None
    import torch

    from liwi.model import build_model, preset, save_checkpoint

    torch.manual_seed(0)
    path = tmp / "cpu-small-random.pt"
    save_checkpoint(build_model(preset("cpu-small")), path, meta={"purpose": "benchmark"})
    print(f"shipped model missing: benchmarking a random cpu-small model ({path})")
    return str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model URI (default: the shipped model)")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--requests", type=int, default=24, help="requests per level at c=1")
    parser.add_argument("--max-seconds", type=float, default=60, help="cap per load level")
    parser.add_argument("--load-seconds", type=float, default=45, help="autoscaling load phase")
    parser.add_argument("--idle-seconds", type=float, default=45, help="autoscaling idle cap")
    parser.add_argument("--quick", action="store_true", help="few requests, for a smoke run")
    parser.add_argument("--skip-autoscaling", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.load_seconds, args.idle_seconds = 4, 20, 30

    from liwi.imageio import encode_png
    from liwi.serving.runner import stop

    tmp = Path(tempfile.mkdtemp(prefix="liwi-bench-"))
    model_uri = args.model or default_model(tmp)
    png = encode_png(test_image())
    levels = (1, 4, 8)
    results = {
        "machine": f"{platform.node()} · {os.cpu_count()} CPUs · {platform.processor() or ''}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": model_uri or "shipped default",
        "size": SIZE,
        "max_layers": MAX_LAYERS,
        "load_average_at_start": os.getloadavg(),
    }
    results["in_process"] = bench_in_process(
        model_uri, png, levels, args.requests, args.max_seconds
    )
    try:
        results["serve"] = bench_serve(
            model_uri, png, levels, args.requests, args.max_seconds, args.port
        )
        if not args.skip_autoscaling:
            results["autoscaling"] = bench_autoscaling(
                model_uri,
                png,
                args.port,
                args.load_seconds,
                args.idle_seconds,
                HERE / "serve_autoscaling.png",
            )
    finally:
        stop()
    results["load_average_at_end"] = os.getloadavg()
    (HERE / "serve_latency.json").write_text(json.dumps(results, indent=2))
    print(markdown(results))
    return 0


def markdown(r: dict) -> str:
    ip, sv = r["in_process"], r.get("serve", {})
    rows = [
        "| concurrency | in-process predict p50 / p99 (ms) | in-process path p50 / p99 (ms) "
        "| HTTP p50 / p99 (ms) | in-process path rps | HTTP rps | Serve added p50 (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in (1, 4, 8):
        p, q, h = ip.get(f"predict_c{c}", {}), ip.get(f"path_c{c}", {}), sv.get(f"http_c{c}", {})
        added = round(h["p50_ms"] - q["p50_ms"], 1) if h.get("p50_ms") and q.get("p50_ms") else "–"
        rows.append(
            f"| {c} | {p.get('p50_ms')} / {p.get('p99_ms')} | {q.get('p50_ms')} / {q.get('p99_ms')}"
            f" | {h.get('p50_ms')} / {h.get('p99_ms')} | {q.get('throughput_rps')} "
            f"| {h.get('throughput_rps')} | {added} |"
        )
    on, off = sv.get("batch_on_c8") or {}, sv.get("batch_off_c8") or {}
    if on.get("throughput_rps") and off.get("throughput_rps"):
        ratio = round(on["throughput_rps"] / off["throughput_rps"], 2)
        rows += [
            "",
            f"Batching at concurrency 8: on (max_batch_size 8) {on['throughput_rps']} rps, "
            f"p50 {on['p50_ms']} ms; off (1) {off['throughput_rps']} rps, p50 {off['p50_ms']} ms "
            f"→ {ratio}×.",
        ]
    if "autoscaling" in r:
        a = r["autoscaling"]
        rows += ["", f"Autoscaling: {json.dumps(a)}"]
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
