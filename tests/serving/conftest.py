"""A real Serve deployment for the serving tests: `liwi serve` in a subprocess on 127.0.0.1.

One session-scoped server runs three applications from one Serve config:

* ``liwi`` at ``/`` — the normal app (API key required, small body/pixel limits);
* ``queue`` at ``/queue`` — a model deployment that takes one request and queues one,
  so bursts get 503 + Retry-After;
* ``timeout`` at ``/timeout`` — a 1 ms request budget, so decompositions get 504.

The model is a tiny, randomly initialised LayerNet saved as a checkpoint in a tmp dir
(the real Predictor loads it). The server runs in its own process (its own local Ray)
and is stopped by PID with SIGINT, as a person would stop ``liwi serve``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from serving_support import API_KEY, MAX_BODY_BYTES, MAX_PIXELS, photo, png_bytes

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240


@dataclass
class Server:
    url: str  # the liwi app, e.g. http://127.0.0.1:PORT
    port: int
    log: Path
    checkpoint: Path

    def app(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_test_config(checkpoint: Path) -> dict:
    common = {"model_uri": str(checkpoint), "max_layers_limit": 6}
    model_opts = {"ray_actor_options": {"num_cpus": 0.5}}
    ingress = {"name": "LiwiIngress", "ray_actor_options": {"num_cpus": 0.25}}
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": 8000, "request_timeout_s": 120},
        "applications": [
            {
                "name": "liwi",
                "route_prefix": "/",
                "import_path": "liwi.serving.deployments:build_app",
                "args": {
                    **common,
                    "api_key": API_KEY,
                    "max_body_bytes": MAX_BODY_BYTES,
                    "max_pixels": MAX_PIXELS,
                    "max_batch_size": 4,
                },
                "deployments": [
                    ingress,
                    {"name": "LiwiModel", "max_ongoing_requests": 8, **model_opts},
                ],
            },
            {
                "name": "queue",
                "route_prefix": "/queue",
                "import_path": "liwi.serving.deployments:build_app",
                "args": {**common, "max_batch_size": 1, "retry_after_s": 3},
                "deployments": [
                    ingress,
                    {
                        "name": "LiwiModel",
                        "max_ongoing_requests": 1,
                        "max_queued_requests": 1,
                        "backpressure_config": {"status_code": 503, "retry_after_s": 3},
                        **model_opts,
                    },
                ],
            },
            {
                "name": "timeout",
                "route_prefix": "/timeout",
                "import_path": "liwi.serving.deployments:build_app",
                "args": {**common, "request_timeout_s": 0.001},
                "deployments": [ingress, {"name": "LiwiModel", **model_opts}],
            },
        ],
    }


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    import torch

    from liwi.model import build_model, preset, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(build_model(preset("tiny")), path, meta={"purpose": "serving tests"})
    return path


def wait_ready(urls: list[str], proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(urls)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"liwi serve exited with {proc.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout_s}s: {pending}\n{tail(log)}")
        try:
            if requests.get(pending[0] + "/readyz", timeout=5).status_code == 200:
                pending.pop(0)
                continue
        except requests.RequestException:
            pass
        time.sleep(0.5)


def tail(path: Path, n: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def stop_by_pid(proc: subprocess.Popen) -> None:
    """SIGINT (Ctrl-C: Serve and Ray shut down), then SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server(tmp_path_factory, tiny_checkpoint) -> Server:
    tmp = tmp_path_factory.mktemp("serve")
    config_path = tmp / "serve.yaml"
    config_path.write_text(yaml.safe_dump(serve_test_config(tiny_checkpoint), sort_keys=False))
    port = free_port()
    log = tmp / "liwi-serve.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "platform"), "RAY_ADDRESS": ""}
    env.pop("LIWI_API_KEY", None)
    cmd = [
        sys.executable, "-m", "liwi.cli", "serve",
        "--config", str(config_path), "--port", str(port), "--host", "127.0.0.1",
        "--num-cpus", "4",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready([base, base + "/queue", base + "/timeout"], proc, log, START_TIMEOUT_S)
        yield Server(url=base, port=port, log=log, checkpoint=tiny_checkpoint)
    finally:
        stop_by_pid(proc)
        print(f"\nliwi serve log: {log}")


@pytest.fixture()
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="session")
def photo_png() -> bytes:
    return png_bytes(photo())
