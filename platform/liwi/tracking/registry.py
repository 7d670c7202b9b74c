"""The model registry: download and URI resolution, evaluation tags, the gate, promotion.

* Loading: :func:`download_model` resolves ``models:/name@alias`` (or ``models:/name/3``,
  ``runs:/…``, ``models:/m-…``) to the local checkpoint file; the predictor calls it.
* Promotion: :func:`promote` moves an alias (``champion``) to a version once its evaluation
  numbers, stored as ``eval.<metric>`` tags by :func:`record_evaluation`, pass a :class:`Gate`.

mlflow is imported inside functions only.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from liwi.config import JobConfig
from liwi.paths import cache_file, liwi_home
from liwi.tracking.store import (
    CANDIDATE_ALIAS,
    CHAMPION_ALIAS,
    CHECKPOINT_ARTIFACT,
    DEFAULT_MODEL_NAME,
    EVAL_TAG_PREFIX,
    TrackingError,
    fluent_store,
    mlflow_client,
    resolve_tracking_uri,
)


# -- loading -----------------------------------------------------------------------------
def is_mlflow_uri(uri: str) -> bool:
    return uri.startswith(("models:/", "runs:/", "mlflow-artifacts:"))


def resolve_model_version(uri: str, tracking_uri: str | None = None) -> tuple[str, str] | None:
    """``(name, version)`` for ``models:/name@alias`` or ``models:/name/N``; None otherwise."""
    m = re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/(\d+))", uri)
    if not m or m.group(1).startswith("m-"):
        return None
    name, alias, version = m.groups()
    client = mlflow_client(tracking_uri)
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
    files never change); other URIs download into a temporary folder that is removed once
    their checkpoint is copied into the content-addressed cache (:func:`liwi.paths.cache_file`).
    """
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
        with tempfile.TemporaryDirectory(prefix="liwi-model-", dir=cache_dir) as tmp:
            ckpt = _download(uri, uri, Path(tmp), tracking)
            return cache_file(ckpt.read_bytes(), ckpt.suffix)
    return _download(uri, source, dst, tracking)


def _download(uri: str, source: str, dst: Path, tracking: str) -> Path:
    """Download ``source`` into ``dst``; the LiWi checkpoint file in what came back."""
    import mlflow.artifacts

    dst.mkdir(parents=True, exist_ok=True)
    try:
        with fluent_store(tracking):
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
    client = mlflow_client(tracking_uri)
    for key, value in metrics.items():
        client.set_model_version_tag(name, version, f"{EVAL_TAG_PREFIX}{key}", repr(float(value)))
    if run_id:
        client.set_model_version_tag(name, version, "eval_run_id", run_id)
    return name, version


def evaluation_of(name: str, version: str, tracking_uri: str | None = None) -> dict[str, float]:
    """The ``eval.<key>`` tags of a registered version, as floats."""
    mv = mlflow_client(tracking_uri).get_model_version(name, version)
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
    client = mlflow_client(tracking_uri)
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
