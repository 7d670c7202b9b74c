"""A real Serve deployment for the serving tests: `liwi serve` in a subprocess on 127.0.0.1.

One server for this package's tests (package scope: it stops once they are done, so its
Ray and replicas do not idle through the rest of the suite) runs three applications
from one Serve config:

* ``liwi`` at ``/`` — the normal app (API key required, small body/pixel limits);
* ``queue`` at ``/queue`` — a model deployment that takes one request and queues one,
  so bursts get 503 + Retry-After;
* ``timeout`` at ``/timeout`` — a 1 ms request budget, so decompositions get 504, and a
  short body deadline, so slow uploads get 408.

The model is a tiny, randomly initialised LayerNet saved as a checkpoint in a tmp dir
(the real Predictor loads it). The server runs in its own process (its own local Ray)
and is stopped by PID with SIGINT, as a person would stop ``liwi serve`` (it starts with
SIGINT ignored, as a script's background command does, and must stop all the same). Its
Ray keeps its session files (logs) in a private ``RAY_TMPDIR``, grepped by the redaction
test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from serving.serving_support import (
    API_KEY,
    BODY_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_PIXELS,
    REPO,
    WORK_PIXELS,
    free_port,
    photo,
    png_bytes,
    stop_by_pid,
    wait_ready,
)

START_TIMEOUT_S = 480  # generous: a shared 2-core box can take minutes to start Ray
ARTIFACTS = REPO / "artifacts" / "serving"


@dataclass
class Server:
    url: str  # the liwi app, e.g. http://127.0.0.1:PORT
    port: int
    log: Path
    checkpoint: Path
    ray_tmp: Path  # the server's RAY_TMPDIR: Ray's session logs are under it

    def app(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


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
                    "work_pixels": WORK_PIXELS,
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
                "args": {**common, "request_timeout_s": 0.001, "body_timeout_s": BODY_TIMEOUT_S},
                "deployments": [ingress, {"name": "LiwiModel", **model_opts}],
            },
        ],
    }


@pytest.fixture(scope="package")
def session_dir() -> Path:
    """A private temp dir for these tests (pytest's basetemp is pruned by other pytest runs
    on a shared machine, which would delete the checkpoint under a running server)."""
    path = Path(tempfile.mkdtemp(prefix="liwi-serving-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="package")
def tiny_checkpoint(session_dir) -> Path:
    import torch

    from liwi.model import build_model, preset, save_checkpoint

    torch.manual_seed(0)
    path = session_dir / "tiny.pt"
    save_checkpoint(build_model(preset("tiny")), path, meta={"purpose": "serving tests"})
    return path


def _ignore_sigint() -> None:
    """Start the server as a shell without job control starts a background command (a
    CI script's ``cmd &``): SIGINT ignored. ``liwi serve`` must still stop on it (before it
    took it, such a server only died by the fixture's SIGKILL, 60 s later)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(scope="package")
def server(session_dir, tiny_checkpoint) -> Server:
    tmp = session_dir
    config_path = tmp / "serve.yaml"
    config_path.write_text(yaml.safe_dump(serve_test_config(tiny_checkpoint), sort_keys=False))
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "liwi-serve.log"  # kept after the run (artifacts/ is git-ignored)
    ray_tmp = Path(tempfile.mkdtemp(prefix="lw-", dir="/tmp"))  # short: Ray's socket paths
    env = {**os.environ, "PYTHONPATH": str(REPO / "platform"), "RAY_ADDRESS": ""}
    env["RAY_TMPDIR"] = str(ray_tmp)
    env.pop("LIWI_API_KEY", None)
    cmd = [
        sys.executable, "-m", "liwi.cli", "serve",
        "--config", str(config_path), "--port", str(port), "--host", "127.0.0.1",
        "--num-cpus", "4",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True,
            preexec_fn=_ignore_sigint,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready([base, base + "/queue", base + "/timeout"], proc, log, START_TIMEOUT_S)
        yield Server(url=base, port=port, log=log, checkpoint=tiny_checkpoint, ray_tmp=ray_tmp)
    finally:
        stop_by_pid(proc)
        shutil.rmtree(ray_tmp, ignore_errors=True)
        print(f"\nliwi serve log: {log}")


@pytest.fixture()
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="package")
def photo_png() -> bytes:
    return png_bytes(photo())
