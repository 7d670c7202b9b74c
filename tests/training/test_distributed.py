"""The Ray Train job end to end: 2-worker CPU DDP, checkpoints, resume, MLflow, registry.

The session's local Ray (``ray_local``) and one tiny synthetic table for the module; the
model is the ``tiny`` preset at 32 px. Tracking goes to the session's real ``mlflow server``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from liwi import tracking
from liwi.training.distributed import MODEL_FILE, STATE_JSON, TrainConfig

pytestmark = pytest.mark.integration

STEPS = 10  # first run
MORE_STEPS = 14  # the re-run continues to this step


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from liwi.synth.job import SynthConfig
    from liwi.synth.job import run as synth

    out = tmp_path_factory.mktemp("synth")
    # big enough that an epoch holds several steps (every epoch restarts the Ray Data stream)
    synth(SynthConfig(out=str(out), n=64, layers=2, size=32, seed=3, progress=False))
    return str(out / "table")


def _config(table, storage, server, name, steps) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "tables": [table],
            "name": "ddp-test",
            "storage_path": storage,
            "preset": "tiny",
            "model": {"resolution": 32},
            # a fixed view of every sample: the loss must fall on the same data
            "data": {
                "crop": 32,
                "scale_min": 1.0,
                "scale_max": 1.0,
                "flip_prob": 0.0,
                "empty_prob": 0.0,
                "prompt_prob": 0.0,
                "degrade_prob": 0.0,
            },
            "steps": steps,
            "batch_size": 2,
            "grad_accum": 2,
            "lr": 0.01,
            "warmup": 0.0,
            "log_every": 1,
            "val_every": 5,
            "val_samples": 4,
            "checkpoint_every": 5,
            "shuffle_buffer": 0,
            # the session's Ray has 2 logical CPUs: half a CPU per worker leaves room for data tasks
            "scaling": {
                "num_workers": 2,
                "resources_per_worker": {"CPU": 0.5},
                "torch_threads": 1,
                "data_cpus": 0.25,
            },
            "tracking": {
                "tracking_uri": server.uri,
                "experiment": name,
                "registered_model": name,
                "image_every": 5,
                "system_metrics_interval_s": 1.0,
            },
        }
    )


@pytest.mark.slow  # ~2-3 min on an idle 2-core box, ~9 min on the shared one
def test_ddp_train_checkpoint_resume_track_register(
    table, ray_local, mlflow_server, tmp_path, monkeypatch
):
    from liwi.predictor import Predictor
    from liwi.training.distributed import run

    name = f"liwi-ddp-{uuid.uuid4().hex[:6]}"
    storage = str(tmp_path / "ray")
    first = run(_config(table, storage, mlflow_server, name, STEPS))

    # a checkpoint is written (rank 0's folder, with the model and the training state)
    assert first.step == STEPS
    assert first.checkpoint_dir.endswith(f"checkpoint_{STEPS:08d}")
    ckpt = tmp_path / "ray" / "ddp-test" / f"checkpoint_{STEPS:08d}"
    assert (ckpt / MODEL_FILE).is_file() and (ckpt / STATE_JSON).is_file()
    # the final model lies in the run's own folder (not a temp folder nobody removes)
    assert first.model_path == tmp_path / "ray" / "ddp-test" / MODEL_FILE
    assert first.model_path.read_bytes() == (ckpt / MODEL_FILE).read_bytes()

    # the loss goes down on the fixed tiny table
    uri = mlflow_server.uri
    hist = [v for _, v in tracking.metric_history(first.mlflow_run_id, "train/total", uri)]
    assert len(hist) == STEPS
    assert np.mean(hist[-3:]) < 0.9 * np.mean(hist[:3]), hist

    # the MLflow run holds params, metrics, system metrics and sample images
    data = tracking.get_run_data(first.mlflow_run_id, uri)
    assert data["params"]["scaling.num_workers"] == "2"
    assert {"val/total", "train/lr", "perf/data_wait_fraction"} <= set(data["metrics"])
    assert any(k.startswith("system/") for k in data["metrics"])
    images = tracking.list_artifacts(first.mlflow_run_id, "images", uri)
    assert any("samples+step+5+" in p for p in images), images

    # re-running with the same name resumes from step 10 (not 0), in the same MLflow run
    second = run(_config(table, storage, mlflow_server, name, MORE_STEPS), register=True)
    assert second.step == MORE_STEPS
    assert second.mlflow_run_id == first.mlflow_run_id
    resumed = tracking.metric_history(first.mlflow_run_id, "train/resumed_from_step", uri)
    assert resumed == [(STEPS, float(STEPS))]
    steps_logged = [s for s, _ in tracking.metric_history(first.mlflow_run_id, "train/total", uri)]
    assert steps_logged == list(range(1, MORE_STEPS + 1))  # no step trained twice

    # the registered version (alias candidate) loads through the Predictor
    assert second.alias_uri == f"models:/{name}@candidate" and second.model_uri.endswith("/2")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("LIWI_HOME", str(tmp_path / "home"))
    predictor = Predictor.from_uri(second.alias_uri, device="cpu")
    stack = predictor.decompose(np.full((24, 40, 3), 0.5, np.float32), max_layers=2)
    assert stack.size == (24, 40)


@pytest.mark.slow
def test_a_killed_worker_restarts_from_the_latest_checkpoint(
    table, ray_local, mlflow_server, tmp_path
):
    from liwi.training.distributed import run

    name = f"liwi-fail-{uuid.uuid4().hex[:6]}"
    cfg = _config(table, str(tmp_path / "ray"), mlflow_server, name, STEPS)
    cfg = cfg.model_copy(update={"max_failures": 1, "inject_failure_at_step": 7})
    result = run(cfg, register=False)
    assert (tmp_path / "ray" / "ddp-test" / ".liwi-injected-failure").is_file()  # it did die
    assert result.step == STEPS
    resumed = tracking.metric_history(
        result.mlflow_run_id, "train/resumed_from_step", mlflow_server.uri
    )
    assert resumed == [(5, 5.0)]  # restarted from the step-5 checkpoint, not from zero


def test_s3_tables_feed_the_ray_data_path(table, ray_local, s3_bucket_uri):
    import pyarrow.fs as pafs

    from liwi.table import read_table, write_table
    from liwi.training.data import DataConfig
    from liwi.training.distributed import _storage
    from liwi.training.ray_data import count_rows, training_samples

    s3_table = f"{s3_bucket_uri}/table"
    write_table(read_table(table), s3_table, name="copy")
    n_train = count_rows([s3_table], "train")
    assert n_train == count_rows([table], "train") > 0

    samples = training_samples([s3_table], "train", DataConfig(crop=32), seed=0).take_all()
    assert len(samples) == n_train  # one decoded, augmented sample per train row
    s = samples[0]
    assert s["image"].shape == (3, 32, 32) and s["alpha"].shape == (1, 32, 32)
    assert s["shadow"].shape == (3, 32, 32) and s["prompt"].shape == (3, 32, 32)
    assert s["image"].min() >= 0.0 and s["image"].max() <= 1.0

    cfg = TrainConfig(tables=[s3_table], storage_path=f"{s3_bucket_uri}/runs", preset="tiny")
    path, fs = _storage(cfg)
    assert (
        isinstance(fs, pafs.S3FileSystem) and path == s3_bucket_uri.removeprefix("s3://") + "/runs"
    )


@pytest.mark.slow
def test_training_with_checkpoints_on_s3(
    table, ray_local, mlflow_server, s3_bucket_uri, tmp_path, monkeypatch
):
    from liwi.lake import Lake
    from liwi.training.distributed import run

    monkeypatch.chdir(tmp_path)  # the final model file goes to ./runs/models/<name>

    storage = f"{s3_bucket_uri}/runs"
    cfg = _config(table, storage, mlflow_server, f"liwi-s3-{uuid.uuid4().hex[:6]}", 5)
    result = run(cfg.model_copy(update={"tables": [table]}), register=False)
    assert result.step == 5 and result.model_path.is_file()
    assert result.model_path == Path("runs") / "models" / "ddp-test" / MODEL_FILE
    lake = Lake.from_uri(f"{storage}/ddp-test/checkpoint_00000005")
    assert lake.exists(lake.path(MODEL_FILE)) and lake.exists(lake.path(STATE_JSON))


@pytest.mark.parametrize("bars", [False, True])
def test_ray_data_progress_bars_follow_the_config(table, ray_local, tmp_path, bars):
    # off by default: in a job log every repaint of a bar is a new line
    import ray.data

    from liwi.training.distributed import build_trainer

    cfg = TrainConfig(
        tables=[table],
        storage_path=str(tmp_path / "runs"),
        preset="tiny",
        tracking={"enabled": False},
        **({"progress_bars": True} if bars else {}),
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = not bars  # the config, not what the context held, decides
    try:
        trainer = build_trainer(cfg)
    finally:
        ctx.enable_progress_bars = False  # as the session's Ray keeps it
    for name in ("train", "val"):
        assert trainer.datasets[name].context.enable_progress_bars is bars
