"""What one model replica serves: the loaded model, its identity and the batch logic.

A :class:`LoadedModel` is built for one model URI and never changes; a replica swaps the
whole object when its deployment's ``user_config`` pins another version
(:mod:`liwi.serving.rollout`). A batch runs on the object it started with, so the version a
response reports is the version that computed it.

Registry aliases (``models:/liwi@champion``) are resolved to a version once, and that version
(``models:/liwi/7``) is what loads: the version reported can never differ from the weights.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liwi.layers import LayerStack
from liwi.model.prompts import Prompt
from liwi.serving.requests import ApiError


def to_predictor_prompt(prompt: Prompt | None) -> Prompt | None:
    """The predictor's prompt for a request's: None when there is none or it is empty."""
    return None if prompt is None or prompt.empty else prompt


def describe_model(uri: str | None) -> dict[str, Any]:
    """URI, name, version and source of a model, for ``/v1/models`` and every response.

    Registry URIs report the registry version (``models:/liwi@champion`` → its version
    number); files report the first 12 hex digits of their sha256, so two servers that
    say the same version hold the same weights.
    """
    from liwi.predictor import DEFAULT_MODEL, resolve_checkpoint

    if uri is None:
        return {
            "uri": "default",
            "name": DEFAULT_MODEL.stem,
            "version": "sha256:" + hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()[:12],
            "source": str(DEFAULT_MODEL),
        }
    if uri.startswith("models:/"):
        from mlflow import MlflowClient

        ref = uri[len("models:/") :]
        if "@" in ref:
            name, alias = ref.split("@", 1)
            version = MlflowClient().get_model_version_by_alias(name, alias).version
        else:
            name, _, version = ref.partition("/")
        return {"uri": uri, "name": name, "version": str(version), "source": uri}
    resolved = resolve_checkpoint(uri)
    if isinstance(resolved, Path):
        digest = hashlib.sha256(resolved.read_bytes()).hexdigest()[:12]
        return {
            "uri": uri,
            "name": resolved.stem,
            "version": f"sha256:{digest}",
            "source": str(resolved),
        }
    return {"uri": uri, "name": None, "version": None, "source": uri}


def load_uri(identity: dict[str, Any]) -> str | None:
    """The URI to load for a described model: a registry alias becomes its resolved version."""
    uri = identity["uri"]
    if uri == "default":
        return None
    if uri.startswith("models:/") and identity.get("version"):
        return f"models:/{identity['name']}/{identity['version']}"
    return uri


class LoadedModel:
    """One model URI, loaded: the Predictor, other methods' decomposers (built on first use)."""

    def __init__(self, uri: str | None, prior_ref: str | None, device: str | None):
        from liwi.decomposers import build_decomposer

        t0 = time.perf_counter()
        self.uri, self.prior_ref, self.device = uri, prior_ref, device
        self.identity = describe_model(uri)
        self.decomposers: dict[str, Any] = {
            "model": build_decomposer("model", load_uri(self.identity), prior_ref, device)
        }
        self._build_lock = threading.Lock()
        self.load_s = time.perf_counter() - t0
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")

    @property
    def predictor(self):
        return self.decomposers["model"]

    def decomposer(self, method: str):
        """The decomposer for ``method``, built on first use (thread-safe)."""
        with self._build_lock:
            if method not in self.decomposers:
                self.decomposers[method] = self._build(method)
            return self.decomposers[method]

    def _build(self, method: str):
        from liwi.decomposers import PriorDecomposer, build_decomposer

        if method == "prior":
            if self.prior_ref is None:
                raise ApiError(
                    422, "bad_method", "method: 'prior' needs a prior; this server runs prior: none"
                )
            shared = getattr(self.predictor, "prior", None)
            if getattr(shared, "weight", None) != self.prior_ref:
                shared = None
            return PriorDecomposer(self.prior_ref, device=self.device, salient=shared)
        return build_decomposer(method, load_uri(self.identity), self.prior_ref, self.device)

    def model_ref(self, method: str = "model") -> dict[str, Any]:
        ref = {"uri": self.identity["uri"], "version": self.identity["version"]}
        if method != "model":
            ref = {"uri": self.decomposer(method).source, "version": None}
        return {**ref, "method": method, "prior": self.prior_ref}

    def run_batch(self, jobs: list[tuple]) -> list[LayerStack | ApiError]:
        """Jobs are ``(image, prompt, max_layers, method)``; one decomposer call per
        (method, max_layers) group (the predictor peels a batch to one depth)."""
        results: list[LayerStack | ApiError | None] = [None] * len(jobs)
        groups: dict[tuple[str, int], list[int]] = {}
        for i, job in enumerate(jobs):
            method = job[3] if len(job) > 3 else "model"
            groups.setdefault((method, job[2]), []).append(i)
        for (method, max_layers), idx in groups.items():
            images = [jobs[i][0] for i in idx]
            prompts = [to_predictor_prompt(jobs[i][1]) for i in idx]
            try:
                stacks = run_group(self.decomposer(method), images, prompts, max_layers)
            except ApiError as exc:
                stacks = [exc] * len(idx)
            for i, stack in zip(idx, stacks, strict=True):
                results[i] = stack
        return results


def run_group(decomposer, images, prompts, max_layers) -> list[LayerStack | ApiError]:
    """One decomposer over a group of images; a bad item becomes a 422, not a failed batch."""
    from liwi.model.prompts import PromptError
    from liwi.predictor import PredictorError

    input_errors = (PredictorError, PromptError)
    batched = getattr(decomposer, "decompose_batch", None)
    if batched is not None:
        try:
            return batched(images, prompts, max_layers=max_layers, batch_size=len(images))
        except input_errors:
            pass  # one bad item must not fail the others: run this group one by one
    stacks: list[LayerStack | ApiError] = []
    for image, prompt in zip(images, prompts, strict=True):
        try:
            stacks.append(decomposer.decompose(image, prompt, max_layers))
        except input_errors as exc:
            stacks.append(ApiError(422, "bad_input", str(exc)))
    return stacks
