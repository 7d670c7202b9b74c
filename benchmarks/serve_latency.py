"""Serve latency, throughput, batching and autoscaling on 127.0.0.1 (run by hand).

    PYTHONPATH=platform python benchmarks/serve_latency.py [--model URI] [--quick]

1. In-process baseline: the Predictor called directly (decompose only, and the whole
   request path without HTTP: PNG decode → decompose → crop → encode), concurrency 1/4/8;
   crop + encode alone at concurrency 1.
2. The Serve app over HTTP (``--format json|zip``, 512×512), one model replica,
   concurrency 1/4/8 (server timings from the ``Server-Timing`` header):
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
    """A synthetic photo from the scene generator: a red and a blue disc with their soft
    shadows on a textured floor (seen from above)."""
    from liwi.synth.procedural import Placement, procedural_scene

    red = Placement(cx=0.35, base=0.55, rx=0.15, ry=0.15, color=(0.8, 0.2, 0.1))
    blue = Placement(cx=0.7, base=0.7, rx=0.1, ry=0.1, color=(0.1, 0.3, 0.8))
    return procedural_scene(seed, size, objects=[red, blue], horizon=0.0).composite()


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


class Load:
    """Latencies and wall time of one workload, accumulated over interleaved rounds."""

    def __init__(self):
        self.latencies: list[float] = []
        self.wall_s = 0.0
        self.errors = 0
        self.extra: list[dict] = []  # per-request server timings (HTTP only)

    def run(self, fn, concurrency: int, n_requests: int, max_s: float) -> None:
        """Call ``fn()`` ``n_requests`` times from ``concurrency`` threads (or until ``max_s``).

        ``fn`` returns None on failure, else a dict of server timings (may be empty).
        """
        lock = threading.Lock()
        counter = iter(range(n_requests))
        deadline = time.perf_counter() + max_s

        def worker():
            while time.perf_counter() < deadline:
                with lock:
                    if next(counter, None) is None:
                        return
                t = time.perf_counter()
                out = fn()
                dt = time.perf_counter() - t
                with lock:
                    if out is None:
                        self.errors += 1
                    else:
                        self.latencies.append(dt)
                        self.extra.append({**out, "total": dt * 1e3})

        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            for f in [pool.submit(worker) for _ in range(concurrency)]:
                f.result()
        self.wall_s += time.perf_counter() - t0

    def summary(self) -> dict:
        return summarize(self.latencies, self.wall_s, self.errors)


# -- in-process ---------------------------------------------------------------------------


def in_process_callers(model_uri: str | None, png: bytes, fmt: str = "json"):
    """``predict_only``, ``full_path`` (decode → decompose → crop → encode ``fmt``) and
    ``encode_only`` (crop → encode a ready stack), one torch thread."""
    import torch

    from liwi.imageio import decode_rgb
    from liwi.predictor import Predictor
    from liwi.serving.encoders import encode_stack, stack_to_json
    from liwi.serving.wire import pack_stack

    torch.set_num_threads(1)  # a model replica gets one CPU (num_cpus: 1 → 1 torch thread)
    predictor = Predictor.from_uri(model_uri, device="cpu")
    image = decode_rgb(png)
    ready = predictor.decompose(image, max_layers=MAX_LAYERS)  # warm-up

    def encode(stack):
        if fmt == "json":
            json.dumps(stack_to_json(pack_stack(stack), {"uri": "bench"}))
        else:
            encode_stack(pack_stack(stack), fmt)

    def predict_only():
        predictor.decompose(image, max_layers=MAX_LAYERS)
        return {}

    def full_path():
        encode(predictor.decompose(decode_rgb(png), max_layers=MAX_LAYERS))
        return {}

    def encode_only():
        encode(ready)
        return {}

    return predict_only, full_path, encode_only


# -- Serve --------------------------------------------------------------------------------


def serve_app(model_uri, batch: int, name: str, prefix: str, autoscale=False) -> dict:
    """One application of serve/config.yaml, with the benchmark's replica settings."""
    from liwi.serving.runner import load_serve_config

    config = load_serve_config(REPO / "serve" / "config.yaml", model_uri=model_uri)
    (app,) = config["applications"]
    app["name"], app["route_prefix"] = name, prefix
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
    app["args"]["max_batch_size"] = batch
    return app


def serve_config(port: int, apps: list[dict]) -> dict:
    from liwi.serving.runner import apply_overrides

    config = {
        "proxy_location": "HeadOnly",
        "http_options": {"host": HOST, "port": port, "request_timeout_s": 300},
        "applications": apps,
    }
    return apply_overrides(config)


def parse_server_timing(header: str) -> dict[str, float]:
    """``decode;dur=12.5, model;dur=40`` → ``{"decode": 12.5, "model": 40.0}``."""
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur)
    return out


def http_caller(url: str, png: bytes, fmt: str = "json"):
    """POST the photo (multipart, format ``fmt``); returns the server's timings or None."""
    import requests

    local = threading.local()

    def call():
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        resp = session.post(
            url + "/v1/decompose",
            files={"image": ("bench.png", png, "image/png")},
            data={"max_layers": str(MAX_LAYERS), "format": fmt},
            timeout=300,
        )
        if resp.status_code != 200:
            return None
        return parse_server_timing(resp.headers.get("Server-Timing", ""))

    return call


def bench_latency(model_uri, png, levels, n, rounds, max_s, port, fmt="json") -> dict:
    """In-process vs HTTP per concurrency, and batching on vs off at 8, in interleaved
    rounds so that load from other processes on a shared machine hits all sides alike."""
    from liwi.serving.runner import start

    predict_only, full_path, encode_only = in_process_callers(model_uri, png, fmt)
    config = serve_config(
        port, [serve_app(model_uri, 8, "on", "/on"), serve_app(model_uri, 1, "off", "/off")]
    )
    start(config, num_cpus=4)
    base = f"http://{HOST}:{port}"
    on, off = http_caller(base + "/on", png, fmt), http_caller(base + "/off", png, fmt)
    for call in (on, off, on, off):
        call()  # warm-up both replicas
    out: dict = {}
    per_round = max(1, n // rounds)
    for c in levels:
        loads = {"predict": Load(), "path": Load(), "http": Load()}
        if c == 1:
            loads["encode"] = Load()  # in-process crop + encode of a ready stack
        for _ in range(rounds):
            k = per_round * (1 if c == 1 else 2)
            if c == 1:
                loads["encode"].run(encode_only, c, k, max_s)
            loads["predict"].run(predict_only, c, k, max_s)
            loads["path"].run(full_path, c, k, max_s)
            loads["http"].run(on, c, k, max_s)
        for name, load in loads.items():
            out[f"{name}_c{c}"] = load.summary()
        out[f"overhead_c{c}"] = serve_overhead(loads["http"].extra)
        print(f"c={c}: " + ", ".join(f"{k} {v.summary()}" for k, v in loads.items()), flush=True)
    batch_on, batch_off = Load(), Load()
    for _ in range(rounds):
        batch_on.run(on, 8, 2 * per_round, max_s)
        batch_off.run(off, 8, 2 * per_round, max_s)
    out["batch_on_c8"], out["batch_off_c8"] = batch_on.summary(), batch_off.summary()
    out["batch_on_c8"]["mean_predict_ms"] = _mean([x["predict"] for x in batch_on.extra])
    out["batch_off_c8"]["mean_predict_ms"] = _mean([x["predict"] for x in batch_off.extra])
    print(f"batching c=8: on {out['batch_on_c8']} off {out['batch_off_c8']}", flush=True)
    return out


def serve_overhead(timings: list[dict]) -> dict:
    """Per request: client latency − (server decode + predictor + encode), in ms."""
    if not timings:
        return {}
    rest = [t["total"] - t["decode"] - t["predict"] - t["encode"] for t in timings]
    queue = [t["model"] - t["predict"] for t in timings]
    return {
        "p50_ms": round(statistics.median(rest), 1),
        "handle_queue_p50_ms": round(statistics.median(queue), 1),
        "decode_p50_ms": round(statistics.median(t["decode"] for t in timings), 1),
        "predict_p50_ms": round(statistics.median(t["predict"] for t in timings), 1),
        "encode_p50_ms": round(statistics.median(t["encode"] for t in timings), 1),
    }


def _mean(xs):
    return round(sum(xs) / len(xs), 1) if xs else None


def bench_autoscaling(model_uri, png, port, load_s, idle_s, plot_path: Path) -> dict:
    from ray import serve

    from liwi.serving.runner import start

    config = serve_config(port, [serve_app(model_uri, 4, "liwi", "/", autoscale=True)])
    start(config, num_cpus=4)
    call = http_caller(f"http://{HOST}:{port}", png)
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
            if call() is not None:
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
        if call() is not None:
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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per level")
    parser.add_argument("--max-seconds", type=float, default=60, help="cap per round")
    parser.add_argument("--load-seconds", type=float, default=45, help="autoscaling load phase")
    parser.add_argument("--idle-seconds", type=float, default=45, help="autoscaling idle cap")
    parser.add_argument("--quick", action="store_true", help="few requests, for a smoke run")
    parser.add_argument("--skip-autoscaling", action="store_true")
    parser.add_argument("--format", choices=("json", "zip"), default="json", help="answer format")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.rounds, args.load_seconds, args.idle_seconds = 3, 1, 20, 30

    from liwi.imageio import encode_png
    from liwi.serving.runner import stop

    tmp = Path(tempfile.mkdtemp(prefix="liwi-bench-"))
    model_uri = args.model or default_model(tmp)
    png = encode_png(test_image())
    results = {
        "machine": f"{platform.node()} · {os.cpu_count()} CPUs · {platform.processor() or ''}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": model_uri or "shipped default",
        "size": SIZE,
        "max_layers": MAX_LAYERS,
        "load_average_at_start": os.getloadavg(),
    }
    try:
        results["format"] = args.format
        results["latency"] = bench_latency(
            model_uri,
            png,
            (1, 4, 8),
            args.requests,
            args.rounds,
            args.max_seconds,
            args.port,
            args.format,
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
    lat = r["latency"]
    rows = [
        "| concurrency | in-process predict p50 / p99 (ms) | in-process path p50 / p99 (ms) "
        "| HTTP p50 / p99 (ms) | in-process path rps | HTTP rps | Serve overhead p50 (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in (1, 4, 8):
        p, q, h = lat.get(f"predict_c{c}", {}), lat.get(f"path_c{c}", {}), lat.get(f"http_c{c}", {})
        o = lat.get(f"overhead_c{c}", {})
        rows.append(
            f"| {c} | {p.get('p50_ms')} / {p.get('p99_ms')} | {q.get('p50_ms')} / {q.get('p99_ms')}"
            f" | {h.get('p50_ms')} / {h.get('p99_ms')} | {q.get('throughput_rps')} "
            f"| {h.get('throughput_rps')} | {o.get('p50_ms')} |"
        )
    enc = lat.get("encode_c1", {})
    rows += [
        "",
        f"In-process crop + encode ({r.get('format', 'json')}) p50: {enc.get('p50_ms')} ms.",
        "",
        "Server-side split (p50 ms): "
        + json.dumps({k: v for k, v in lat.items() if k.startswith("overhead")}),
    ]
    on, off = lat.get("batch_on_c8") or {}, lat.get("batch_off_c8") or {}
    if on.get("throughput_rps") and off.get("throughput_rps"):
        ratio = round(on["throughput_rps"] / off["throughput_rps"], 2)
        rows += [
            "",
            f"Batching at concurrency 8: on (max_batch_size 8) {on['throughput_rps']} rps, "
            f"p50 {on['p50_ms']} ms, mean batch predict {on.get('mean_predict_ms')} ms; "
            f"off (1) {off['throughput_rps']} rps, p50 {off['p50_ms']} ms, "
            f"mean predict {off.get('mean_predict_ms')} ms → {ratio}×.",
        ]
    if "autoscaling" in r:
        rows += ["", f"Autoscaling: {json.dumps(r['autoscaling'])}"]
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
