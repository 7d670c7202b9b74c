"""liwi.tracking against the local sqlite store and a real ``mlflow server``."""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pytest

from liwi import tracking
from liwi.tracking import Gate, TrackingConfig, TrackingError


def test_flatten_params_nests_with_dots_and_serialises_lists():
    flat = tracking.flatten_params({"a": {"b": 1, "c": [1, 2]}, "lr": 0.1, "name": "x"})
    assert flat == {"a.b": "1", "a.c": "[1, 2]", "lr": "0.1", "name": "x"}
    assert len(tracking.flatten_params({"k": "v" * 10_000})["k"]) == tracking.MAX_PARAM_CHARS


def test_tracking_uri_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("LIWI_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.resolve_tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert tracking.resolve_tracking_uri() == "http://127.0.0.1:1"
    assert tracking.resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_gate_reports_every_failure():
    gate = Gate(min={"iou": 0.9}, max={"l1": 0.04})
    assert gate.failures({"iou": 0.95, "l1": 0.03}) == []
    fails = gate.failures({"iou": 0.5})
    assert len(fails) == 2 and "iou" in fails[0] and "missing" in fails[1]
    assert gate.failures({"iou": float("nan"), "l1": 0.0})  # NaN never passes


@pytest.fixture(
    scope="module", params=["local", pytest.param("server", marks=pytest.mark.integration)]
)
def store(request, tmp_path_factory):
    """A tracking URI: a local sqlite store, or the session's real mlflow server."""
    if request.param == "local":
        return f"sqlite:///{tmp_path_factory.mktemp('home') / 'mlflow.db'}"
    return request.getfixturevalue("mlflow_server").uri


def test_run_logs_params_metrics_images_system_metrics_and_model(store, tmp_path):
    name = f"liwi-test-{uuid.uuid4().hex[:8]}"
    cfg = TrackingConfig(tracking_uri=store, experiment=name, system_metrics_interval_s=0.5)
    run = tracking.start_run(cfg, params={"model": {"width": 8}, "lr": 1e-3})
    for step in range(3):
        run.log_metrics({"loss": 1.0 / (step + 1), "bad": float("nan")}, step=step)
    run.log_image(np.linspace(0, 1, 8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3), "samples", 2)
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"liwi-checkpoint")
    version = run.log_model(ckpt, registered_model=name)
    # the system-metrics sampler runs on its own thread: give it time on a loaded machine
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        k.startswith("system/cpu") for k in tracking.get_run_data(run.run_id, store)["metrics"]
    ):
        time.sleep(0.5)
    run.end()

    data = tracking.get_run_data(run.run_id, store)
    assert data["params"] == {"model.width": "8", "lr": "0.001"}
    assert data["status"] == "FINISHED"
    assert "bad" not in data["metrics"]
    assert tracking.metric_history(run.run_id, "loss", store) == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert any(k.startswith("system/cpu") for k in data["metrics"]), data["metrics"]
    assert any("samples+step+2" in p for p in tracking.list_artifacts(run.run_id, "images", store))

    assert version.version == "1" and version.alias_uri == f"models:/{name}@candidate"
    import mlflow

    tags = mlflow.MlflowClient(store).get_model_version(name, "1").tags
    assert tags["weights.prior"] == "u2netp-liwi" and "Apache-2.0" in tags["weights.licence"]
    path = tracking.download_model(version.alias_uri, store, cache_dir=tmp_path / "cache")
    assert path.read_bytes() == b"liwi-checkpoint"
    # cached: a second call does not download again (the same file comes back)
    assert tracking.download_model(f"models:/{name}/1", store, tmp_path / "cache") == path


def test_promote_moves_alias_only_when_gate_passes(store, tmp_path):
    name = f"liwi-gate-{uuid.uuid4().hex[:8]}"
    cfg = TrackingConfig(tracking_uri=store, experiment=name, system_metrics=False)
    run = tracking.start_run(cfg)
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    run.log_model(ckpt, registered_model=name)
    run.end()
    gate = Gate(min={"alpha_soft_iou": 0.9})

    with pytest.raises(TrackingError, match="no evaluation"):
        tracking.promote(name, gate=gate, tracking_uri=store)
    tracking.record_evaluation(f"models:/{name}@candidate", {"alpha_soft_iou": 0.5}, None, store)
    with pytest.raises(TrackingError, match="alpha_soft_iou = 0.5 < 0.9"):
        tracking.promote(name, gate=gate, tracking_uri=store)
    with pytest.raises(TrackingError):
        tracking.resolve_model_version(f"models:/{name}@champion", store)  # nothing moved

    tracking.record_evaluation(f"models:/{name}/1", {"alpha_soft_iou": 0.95}, None, store)
    done = tracking.promote(name, gate=gate, tracking_uri=store)
    assert (done.version, done.previous_version) == ("1", None)
    assert tracking.resolve_model_version(f"models:/{name}@champion", store) == (name, "1")


def test_unknown_model_is_a_clear_error(store):
    with pytest.raises(TrackingError, match="no such registered model"):
        tracking.download_model("models:/does-not-exist@candidate", store)


def test_a_callers_active_experiment_does_not_block_our_runs(tmp_path):
    """Someone's ``mlflow.set_experiment`` elsewhere in the process must not break logging."""
    import mlflow

    other = f"sqlite:///{tmp_path / 'other.db'}"
    mine = f"sqlite:///{tmp_path / 'mine.db'}"
    mlflow.set_tracking_uri(other)
    mlflow.set_experiment("someone")
    mlflow.set_experiment("someone-else")  # a second one: its id differs from our run's
    try:
        run = tracking.start_run(TrackingConfig(tracking_uri=mine, system_metrics=False))
        ckpt = tmp_path / "model.pt"
        ckpt.write_bytes(b"x")
        version = run.log_model(ckpt, registered_model="mine")
        run.end()
        assert version.version == "1"
    finally:
        import mlflow.tracking.fluent as fluent

        fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
