"""Experiment tracking and the model registry: the ONLY module that imports mlflow.

* Where: :func:`resolve_tracking_uri` — the config value, else ``MLFLOW_TRACKING_URI``,
  else a local sqlite store ``<home>/.liwi/mlflow.db`` (MLflow 3 deprecates the plain
  ``./mlruns`` file store and itself defaults to sqlite) with artifacts next to it.
* What: :class:`TrackedRun` logs the whole resolved config (flattened params), metrics per
  step, system metrics (CPU/GPU/memory; needs ``psutil``), images (a grid of sample
  decompositions) and the trained model.
* The model: our own checkpoint file logged as a pyfunc model's artifact
  (:class:`LiwiPyfuncModel` wraps :class:`liwi.predictor.Predictor`). We deliberately do not
  use ``mlflow.pytorch``: MLflow 3's default ``pt2`` export fixes the batch size (and image
  size) of the input example, while the predictor takes any batch and any size.
* The registry: the logged model is registered and gets the alias ``candidate``;
  :func:`promote` moves another alias (``champion``) to it once evaluation numbers, stored as
  ``eval.<metric>`` tags on the version by :func:`record_evaluation`, pass a :class:`Gate`.
* Loading: :func:`download_model` resolves ``models:/name@alias`` (or ``models:/name/3``,
  ``runs:/…``, ``models:/m-…``) to the local checkpoint file; the predictor calls it.

mlflow is imported inside functions only, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from liwi.config import JobConfig

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
def liwi_home() -> Path:
    """``$LIWI_HOME`` or ``<repo>/.liwi`` (the source checkout), else ``~/.liwi``."""
    env = os.environ.get("LIWI_HOME")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and os.access(repo, os.W_OK):
        return repo / ".liwi"
    return Path.home() / ".liwi"


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


def _client(tracking_uri: str | None = None):
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _ensure_experiment(client, name: str, tracking_uri: str) -> str:
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
        return _client(self.tracking_uri)

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
                python_model=_pyfunc_class()(),
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
                registered_model, source=info.model_uri, run_id=self.run_id, model_id=info.model_id
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


@contextmanager
def _fluent_store(tracking_uri: str) -> Iterator[None]:
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


@contextmanager
def _active(run: TrackedRun) -> Iterator[None]:
    """Make ``run`` the fluent API's active run (on its own store) for one block."""
    import mlflow

    active = mlflow.active_run()
    if active is not None and active.info.run_id == run.run_id:
        yield
        return
    with _fluent_store(run.tracking_uri):
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
    client = _client(uri)
    if run_id is not None:
        info = client.get_run(run_id).info
        client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        run = TrackedRun(run_id, uri, info.experiment_id)
    else:
        exp_id = _ensure_experiment(client, config.experiment, uri)
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
    client = _client(tracking_uri)
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
    hist = _client(tracking_uri).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in hist)


def list_artifacts(
    run_id: str, path: str | None = None, tracking_uri: str | None = None
) -> list[str]:
    return [f.path for f in _client(tracking_uri).list_artifacts(run_id, path)]


# -- the pyfunc flavour ------------------------------------------------------------------
def _pyfunc_class() -> type:
    """``LiwiPyfuncModel``: created on first use so mlflow is not imported with this module.

    The class is stored in this module's globals under its qualified name, so pickles of it
    refer to ``liwi.tracking.LiwiPyfuncModel`` (resolved again by :func:`__getattr__`).
    """
    cls = globals().get("LiwiPyfuncModel")
    if cls is not None:
        return cls
    import mlflow.pyfunc

    class LiwiPyfuncModel(mlflow.pyfunc.PythonModel):
        """pyfunc face of :class:`liwi.predictor.Predictor` (for ``mlflow.pyfunc.load_model``).

        ``predict`` takes N×H×W×3 float images and returns, per image, the composited
        foreground (RGBA), the background (RGB) and the total shadow attenuation (H×W×C).
        """

        def load_context(self, context) -> None:
            from liwi.predictor import Predictor

            self.predictor = Predictor.from_uri(context.artifacts[CHECKPOINT_ARTIFACT])

        def predict(self, context, model_input, params=None):
            images = np.asarray(model_input, dtype=np.float32)
            if images.ndim == 3:
                images = images[None]
            out = []
            for image in images:
                stack = self.predictor.decompose(image)
                out.append(
                    {
                        "background": stack.background,
                        "foreground": stack.foreground(),
                        "attenuation": stack.total_attenuation(),
                    }
                )
            return out

    LiwiPyfuncModel.__module__ = __name__
    LiwiPyfuncModel.__qualname__ = "LiwiPyfuncModel"
    globals()["LiwiPyfuncModel"] = LiwiPyfuncModel
    return LiwiPyfuncModel


def __getattr__(name: str) -> Any:
    if name == "LiwiPyfuncModel":
        return _pyfunc_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- loading -----------------------------------------------------------------------------
def is_mlflow_uri(uri: str) -> bool:
    return uri.startswith(("models:/", "runs:/", "mlflow-artifacts:"))


def resolve_model_version(uri: str, tracking_uri: str | None = None) -> tuple[str, str] | None:
    """``(name, version)`` for ``models:/name@alias`` or ``models:/name/N``; None otherwise."""
    m = re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/(\d+))", uri)
    if not m or m.group(1).startswith("m-"):
        return None
    name, alias, version = m.groups()
    client = _client(tracking_uri)
    try:
        if alias:
            return name, str(client.get_model_version_by_alias(name, alias).version)
        return name, str(client.get_model_version(name, version).version)
    except Exception as exc:
        raise TrackingError(f"{uri}: no such registered model version ({exc})") from None


def download_model(
    uri: str, tracking_uri: str | None = None, cache_dir: str | Path | None = None
) -> Path:
    """Download an MLflow model logged by :meth:`TrackedRun.log_model`; its checkpoint path.

    Registered versions are cached under ``<home>/models/<name>/<version>`` (a version's
    files never change); other URIs download into a fresh temporary folder.
    """
    import mlflow.artifacts

    tracking = resolve_tracking_uri(tracking_uri)
    resolved = resolve_model_version(uri, tracking)
    if resolved is not None:
        name, version = resolved
        dst = Path(cache_dir or liwi_home() / "models") / name / version
        ckpt = _checkpoint_in(dst) if (dst / "MLmodel").is_file() else None
        if ckpt is not None:
            return ckpt
        source = f"models:/{name}/{version}"
    else:
        dst = Path(tempfile.mkdtemp(prefix="liwi-model-", dir=cache_dir))
        source = uri
    dst.mkdir(parents=True, exist_ok=True)
    try:
        with _fluent_store(tracking):
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(dst), tracking_uri=tracking
                )
            )
    except Exception as exc:
        raise TrackingError(f"cannot download model {uri}: {exc}") from exc
    if local.is_file():  # e.g. runs:/<id>/model.pt: a checkpoint logged as a plain artifact
        return local
    if local != dst and (local / "MLmodel").is_file() and not (dst / "MLmodel").is_file():
        dst = local
    ckpt = _checkpoint_in(dst)
    if ckpt is None and not (dst / "MLmodel").is_file():
        # a folder of plain artifacts (no MLflow model): exactly one checkpoint file in it
        found = sorted(local.rglob("*.pt")) + sorted(local.rglob("*.pth"))
        ckpt = found[0] if len(found) == 1 else None
    if ckpt is None:
        raise TrackingError(f"{uri} is not a LiWi model (no '{CHECKPOINT_ARTIFACT}' artifact)")
    return ckpt


def _checkpoint_in(model_dir: Path) -> Path | None:
    """The checkpoint file named in a pyfunc model folder's MLmodel."""
    import yaml

    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        return None
    spec = yaml.safe_load(mlmodel.read_text()) or {}
    arts = (spec.get("flavors", {}).get("python_function", {}) or {}).get("artifacts") or {}
    entry = arts.get(CHECKPOINT_ARTIFACT)
    if not entry:
        return None
    path = model_dir / entry["path"]
    return path if path.is_file() else None


# -- evaluation and promotion ------------------------------------------------------------
class Gate(BaseModel):
    """Thresholds a model version's evaluation must pass before an alias moves to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: dict[str, float] = Field(default_factory=dict)  # metric → lowest acceptable value
    max: dict[str, float] = Field(default_factory=dict)  # metric → highest acceptable value

    def failures(self, metrics: Mapping[str, float]) -> list[str]:
        """Human-readable reasons the gate does not pass (empty = pass)."""
        out = []
        for key, lo in self.min.items():
            if key not in metrics:
                out.append(f"{key}: missing (needs ≥ {lo})")
            elif not metrics[key] >= lo:
                out.append(f"{key} = {metrics[key]:.4g} < {lo}")
        for key, hi in self.max.items():
            if key not in metrics:
                out.append(f"{key}: missing (needs ≤ {hi})")
            elif not metrics[key] <= hi:
                out.append(f"{key} = {metrics[key]:.4g} > {hi}")
        return out


def record_evaluation(
    model_uri: str,
    metrics: Mapping[str, float],
    run_id: str | None = None,
    tracking_uri: str | None = None,
) -> tuple[str, str] | None:
    """Store evaluation ``metrics`` as ``eval.<key>`` tags on the registered version of ``model_uri``."""
    resolved = resolve_model_version(model_uri, tracking_uri)
    if resolved is None:
        return None
    name, version = resolved
    client = _client(tracking_uri)
    for key, value in metrics.items():
        client.set_model_version_tag(name, version, f"{EVAL_TAG_PREFIX}{key}", repr(float(value)))
    if run_id:
        client.set_model_version_tag(name, version, "eval_run_id", run_id)
    return name, version


def evaluation_of(name: str, version: str, tracking_uri: str | None = None) -> dict[str, float]:
    """The ``eval.<key>`` tags of a registered version, as floats."""
    mv = _client(tracking_uri).get_model_version(name, version)
    return {
        k.removeprefix(EVAL_TAG_PREFIX): float(v)
        for k, v in mv.tags.items()
        if k.startswith(EVAL_TAG_PREFIX)
    }


class PromoteConfig(JobConfig):
    """``liwi promote`` (YAML under ``jobs/configs/promote.yaml``)."""

    name: str = DEFAULT_MODEL_NAME  # registered model
    alias: str = CHAMPION_ALIAS  # the alias to move
    from_alias: str = CANDIDATE_ALIAS  # the version behind this alias is promoted …
    version: str | None = None  # … unless a version is named
    tracking_uri: str | None = None  # None: MLFLOW_TRACKING_URI, else the local store
    gate: Gate = Field(default_factory=Gate)  # evaluation thresholds that must pass


@dataclass
class Promotion:
    name: str
    version: str
    alias: str
    metrics: dict[str, float]
    previous_version: str | None


def promote(
    name: str,
    alias: str = CHAMPION_ALIAS,
    gate: Gate | None = None,
    from_alias: str = CANDIDATE_ALIAS,
    version: str | None = None,
    tracking_uri: str | None = None,
) -> Promotion:
    """Move ``alias`` to the version behind ``from_alias`` (or ``version``) if it passes ``gate``.

    Raises :class:`TrackingError` (and moves nothing) when the version has no evaluation or
    the gate fails.
    """
    client = _client(tracking_uri)
    try:
        if version is None:
            version = str(client.get_model_version_by_alias(name, from_alias).version)
        else:
            client.get_model_version(name, version)
    except Exception as exc:
        raise TrackingError(
            f"models:/{name}@{from_alias if version is None else version} not found: {exc}"
        ) from None
    metrics = evaluation_of(name, version, tracking_uri)
    gate = gate or Gate()
    if (gate.min or gate.max) and not metrics:
        raise TrackingError(
            f"{name} version {version} has no evaluation; run `liwi evaluate --model "
            f"models:/{name}/{version}` first"
        )
    failures = gate.failures(metrics)
    if failures:
        raise TrackingError(
            f"{name} version {version} does not pass the gate: " + "; ".join(failures)
        )
    try:
        previous = str(client.get_model_version_by_alias(name, alias).version)
    except Exception:
        previous = None
    client.set_registered_model_alias(name, alias, version)
    return Promotion(name, version, alias, metrics, previous)
