"""Run recording: one MLflow run's params, metrics, images, artifacts and model.

:class:`TrackedRun` logs the whole resolved config (flattened params), metrics per step,
system metrics (CPU/GPU/memory; needs ``psutil``), images (a grid of sample
decompositions) and the trained model — our own checkpoint file logged as a pyfunc model's
artifact (:mod:`liwi.tracking.pyfunc`), registered with the alias ``candidate``.
mlflow is imported inside functions only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liwi.tracking.store import (
    CANDIDATE_ALIAS,
    CHECKPOINT_ARTIFACT,
    DEFAULT_MODEL_NAME,
    MAX_PARAM_CHARS,
    PARAM_BATCH,
    TrackingConfig,
    TrackingError,
    ensure_experiment,
    fluent_store,
    mlflow_client,
    resolve_tracking_uri,
)


# -- params ------------------------------------------------------------------------------
def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` → ``{"a.b": "1"}``; lists become JSON; long values are cut."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, prefix=f"{name}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[name] = text[:MAX_PARAM_CHARS]
    return out


# -- a run -------------------------------------------------------------------------------
@dataclass
class RegisteredVersion:
    """What :meth:`TrackedRun.log_model` registered."""

    name: str | None
    version: str | None
    model_uri: str  # models:/<name>/<version>, or the logged model's models:/m-… URI
    alias: str | None = None

    @property
    def alias_uri(self) -> str | None:
        return f"models:/{self.name}@{self.alias}" if self.name and self.alias else None


@dataclass
class TrackedRun:
    """One MLflow run, addressed by id (safe to use from any process, e.g. Ray rank 0)."""

    run_id: str
    tracking_uri: str
    experiment_id: str
    _monitor: Any = field(default=None, repr=False)

    @property
    def client(self):
        return mlflow_client(self.tracking_uri)

    def log_params(self, config: Mapping[str, Any]) -> None:
        """Log a (nested) config as flattened params, in batches MLflow accepts."""
        from mlflow.entities import Param

        flat = flatten_params(config)
        existing = self.client.get_run(self.run_id).data.params
        items = [Param(k, v) for k, v in flat.items() if k not in existing]
        for i in range(0, len(items), PARAM_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + PARAM_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log finite scalar metrics at ``step`` in one request (non-finite ones are skipped)."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, int(step or 0))
            for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))
        ]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        """A time-stepped image (H×W×3 float in [0, 1] or uint8), shown per step in the UI."""
        from liwi.imageio import to_uint8

        arr = image if image.dtype == np.uint8 else to_uint8(image)
        self.client.log_image(self.run_id, arr, key=key, step=int(step))

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> None:
        self.client.log_dict(self.run_id, dict(data), artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))

    def log_model(
        self,
        checkpoint: str | Path,
        registered_model: str | None = DEFAULT_MODEL_NAME,
        alias: str | None = CANDIDATE_ALIAS,
        metadata: Mapping[str, Any] | None = None,
    ) -> RegisteredVersion:
        """Log ``checkpoint`` as a pyfunc model of this run; register it and set ``alias``."""
        import mlflow
        from mlflow.models import ModelSignature
        from mlflow.types.schema import Schema, TensorSpec

        from liwi.tracking.pyfunc import pyfunc_class

        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise TrackingError(f"checkpoint not found: {checkpoint}")
        # any batch, any size: N×H×W×3 float32 in [0, 1]
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1, 3), "image")])
        )
        # registration runs inside _active too: a sqlite registry checks the logged model's
        # source through the fluent client, which must point at this run's store
        with _active(self):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=pyfunc_class()(),
                artifacts={CHECKPOINT_ARTIFACT: str(checkpoint)},
                signature=signature,
                pip_requirements=["liwi", "torch", "numpy", "mlflow"],  # no slow inference
                metadata=dict(metadata or {}),
            )
            if not registered_model:
                return RegisteredVersion(None, None, info.model_uri)
            client = self.client
            try:
                client.get_registered_model(registered_model)
            except Exception:
                client.create_registered_model(registered_model)
            mv = client.create_model_version(
                registered_model,
                source=info.model_uri,
                run_id=self.run_id,
                model_id=info.model_id,
                tags=weights_tags(),
            )
            if alias:
                client.set_registered_model_alias(registered_model, alias, mv.version)
        return RegisteredVersion(
            registered_model, str(mv.version), f"models:/{registered_model}/{mv.version}", alias
        )

    def end(self, status: str = "FINISHED") -> None:
        if self._monitor is not None:
            self._monitor.finish()
            self._monitor = None
        self.client.set_terminated(self.run_id, status=status)


def weights_tags() -> dict[str, str]:
    """Model-version tags naming the pretrained weights the served pipeline uses, and their
    licence (the default salient prior: ``Predictor.from_uri`` loads it beside the model)."""
    from liwi.weights import DEFAULT_WEIGHT, licence_of

    return {"weights.prior": DEFAULT_WEIGHT, "weights.licence": licence_of(DEFAULT_WEIGHT)}


@contextmanager
def _active(run: TrackedRun) -> Iterator[None]:
    """Make ``run`` the fluent API's active run (on its own store) for one block."""
    import mlflow

    active = mlflow.active_run()
    if active is not None and active.info.run_id == run.run_id:
        yield
        return
    with fluent_store(run.tracking_uri):
        mlflow.start_run(run_id=run.run_id, nested=active is not None)
        try:
            yield
        finally:
            mlflow.end_run(status="RUNNING")  # leave the status alone: TrackedRun.end sets it


def start_run(
    config: TrackingConfig | None = None,
    params: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> TrackedRun:
    """Start (or, given ``run_id``, resume) a run; log ``params`` and start system metrics."""
    from mlflow.entities import RunStatus

    config = config or TrackingConfig()
    uri = resolve_tracking_uri(config.tracking_uri)
    client = mlflow_client(uri)
    if run_id is not None:
        info = client.get_run(run_id).info
        client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        run = TrackedRun(run_id, uri, info.experiment_id)
    else:
        exp_id = ensure_experiment(client, config.experiment, uri)
        created = client.create_run(exp_id, run_name=config.run_name, tags=dict(tags or {}))
        run = TrackedRun(created.info.run_id, uri, exp_id)
    if params:
        run.log_params(params)
    if config.system_metrics:
        run._monitor = _start_system_metrics(run, config.system_metrics_interval_s)
    return run


def _start_system_metrics(run: TrackedRun, interval_s: float):
    """MLflow's system-metrics monitor for ``run`` (None when psutil is missing)."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(
        run.run_id,
        sampling_interval=interval_s,
        samples_before_logging=1,
        tracking_uri=run.tracking_uri,
    )
    monitor.start()
    return monitor


def get_run_data(run_id: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """Params, latest metrics, tags and top-level artifact paths of a run (for tests/reports)."""
    client = mlflow_client(tracking_uri)
    run = client.get_run(run_id)
    return {
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
        "status": run.info.status,
        "artifacts": [f.path for f in client.list_artifacts(run_id)],
    }


def metric_history(
    run_id: str, key: str, tracking_uri: str | None = None
) -> list[tuple[int, float]]:
    """``[(step, value), …]`` of one metric of a run, by step."""
    hist = mlflow_client(tracking_uri).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in hist)


def list_artifacts(
    run_id: str, path: str | None = None, tracking_uri: str | None = None
) -> list[str]:
    return [f.path for f in mlflow_client(tracking_uri).list_artifacts(run_id, path)]
