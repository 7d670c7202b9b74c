"""Experiment tracking and the model registry: the ONLY package that imports mlflow.

* :mod:`~liwi.tracking.store` — where the store is (config, ``MLFLOW_TRACKING_URI``, else a
  local sqlite store under :func:`liwi.paths.liwi_home`) and the client pointed at it;
* :mod:`~liwi.tracking.runs` — run recording (:class:`TrackedRun`, :func:`start_run`);
* :mod:`~liwi.tracking.registry` — model download and URI resolution, evaluation tags,
  the :class:`Gate` and :func:`promote`;
* :mod:`~liwi.tracking.pyfunc` — :class:`LiwiPyfuncModel`, the MLflow face of the Predictor.

The public names are re-exported here, so ``from liwi.tracking import …`` keeps working.
mlflow is imported inside functions only, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import Any

from liwi.paths import liwi_home
from liwi.tracking.registry import (
    Gate,
    PromoteConfig,
    Promotion,
    download_model,
    evaluation_of,
    is_mlflow_uri,
    promote,
    record_evaluation,
    resolve_model_version,
)
from liwi.tracking.runs import (
    RegisteredVersion,
    TrackedRun,
    flatten_params,
    get_run_data,
    list_artifacts,
    metric_history,
    start_run,
)
from liwi.tracking.store import (
    CANDIDATE_ALIAS,
    CHAMPION_ALIAS,
    CHECKPOINT_ARTIFACT,
    DEFAULT_EXPERIMENT,
    DEFAULT_MODEL_NAME,
    EVAL_TAG_PREFIX,
    MAX_PARAM_CHARS,
    PARAM_BATCH,
    TrackingConfig,
    TrackingError,
    local_store_uri,
    resolve_tracking_uri,
)

__all__ = [
    "CANDIDATE_ALIAS",
    "CHAMPION_ALIAS",
    "CHECKPOINT_ARTIFACT",
    "DEFAULT_EXPERIMENT",
    "DEFAULT_MODEL_NAME",
    "EVAL_TAG_PREFIX",
    "MAX_PARAM_CHARS",
    "PARAM_BATCH",
    "Gate",
    "LiwiPyfuncModel",
    "PromoteConfig",
    "Promotion",
    "RegisteredVersion",
    "TrackedRun",
    "TrackingConfig",
    "TrackingError",
    "download_model",
    "evaluation_of",
    "flatten_params",
    "get_run_data",
    "is_mlflow_uri",
    "list_artifacts",
    "liwi_home",
    "local_store_uri",
    "metric_history",
    "promote",
    "record_evaluation",
    "resolve_model_version",
    "resolve_tracking_uri",
    "start_run",
]


def __getattr__(name: str) -> Any:
    """``LiwiPyfuncModel`` is made on first use (pickles of logged models name it here)."""
    if name == "LiwiPyfuncModel":
        from liwi.tracking.pyfunc import pyfunc_class

        return pyfunc_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
