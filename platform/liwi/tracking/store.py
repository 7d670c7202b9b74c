"""Where the tracking store is, and the MLflow client pointed at it.

The tracking URI is the config value, else ``MLFLOW_TRACKING_URI``, else a local sqlite
store ``<home>/mlflow.db`` (MLflow 3 deprecates the plain ``./mlruns`` file store and itself
defaults to sqlite) with artifacts next to it; ``<home>`` is :func:`liwi.paths.liwi_home`.
mlflow is imported inside functions only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from liwi.paths import liwi_home

DEFAULT_EXPERIMENT = "liwi"
DEFAULT_MODEL_NAME = "liwi"
CANDIDATE_ALIAS = "candidate"
CHAMPION_ALIAS = "champion"
CHECKPOINT_ARTIFACT = "checkpoint"  # key of our checkpoint in the pyfunc model's artifacts
EVAL_TAG_PREFIX = "eval."  # model-version tags written by record_evaluation
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
PARAM_BATCH = 100  # MLflow's limit on params per log_batch call


class TrackingError(RuntimeError):
    """A tracking/registry operation failed or was refused (e.g. a gate did not pass)."""


class TrackingConfig(BaseModel):
    """Where and what to track; nested in the train/evaluate job configs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True  # False: no MLflow at all (quick local experiments)
    tracking_uri: str | None = None  # None: MLFLOW_TRACKING_URI, else the local sqlite store
    experiment: str = DEFAULT_EXPERIMENT  # MLflow experiment name
    run_name: str | None = None  # None: MLflow picks one
    registered_model: str | None = DEFAULT_MODEL_NAME  # None: log the model, don't register
    alias: str = CANDIDATE_ALIAS  # alias set on the newly registered version
    image_every: int = Field(100, ge=0)  # steps between sample-grid images (0 = only at end)
    system_metrics: bool = True  # CPU/GPU/memory curves (needs psutil; skipped without it)
    system_metrics_interval_s: float = Field(10.0, gt=0)  # sampling period of system metrics


# -- where --------------------------------------------------------------------------------
def local_store_uri() -> str:
    """The default local tracking store: ``sqlite:///<home>/mlflow.db``."""
    home = liwi_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The config value, else ``MLFLOW_TRACKING_URI``, else :func:`local_store_uri`."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or local_store_uri()


def _is_local_db(uri: str) -> bool:
    return uri.startswith("sqlite:")


def mlflow_client(tracking_uri: str | None = None):
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(client, name: str, tracking_uri: str) -> str:
    """Experiment id of ``name``, created if missing (local stores keep artifacts in home)."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if _is_local_db(tracking_uri):
        # sqlite stores would otherwise put artifacts in ./mlruns of whatever the cwd is
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        location = (db.parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


@contextmanager
def fluent_store(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (and so its registry) at ``tracking_uri`` for one block.

    MLflow's ``set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI``; both the module state
    and the variable are put back exactly as they were.
    """
    import mlflow
    import mlflow.tracking._tracking_service.utils as fluent_uri
    import mlflow.tracking.fluent as fluent

    old_uri = fluent_uri._tracking_uri
    old_env = os.environ.get("MLFLOW_TRACKING_URI")
    # A caller's set_experiment() (module state + MLFLOW_EXPERIMENT_ID) belongs to another
    # store and makes start_run(run_id=…) refuse our run: hide it for the block.
    old_experiment = fluent._active_experiment_id
    old_experiment_env = os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    fluent._active_experiment_id = None
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_uri)
        if old_env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = old_env
        fluent._active_experiment_id = old_experiment
        if old_experiment_env is not None:
            os.environ["MLFLOW_EXPERIMENT_ID"] = old_experiment_env
