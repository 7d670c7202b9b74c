"""Ray Serve deployments: the FastAPI ingress and the batched model, plus ``build_app``.

``serve/config.yaml`` names :func:`build_app` as its ``import_path``; its ``args`` are a
:class:`~liwi.serving.settings.ServeAppArgs`. Deployment options (replicas, autoscaling,
queue limits, CPUs/GPUs) come from the config's ``deployments`` section; the defaults
in the decorators below only matter when the app is run without a config.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from liwi.layer_pack import PackedStack
from liwi.layers import LayerStack
from liwi.model.prompts import Prompt
from liwi.serving.requests import ApiError, DecomposeJob
from liwi.serving.settings import ServeAppArgs
from liwi.serving.wire import pack_stack

log = logging.getLogger("liwi.serving")

INGRESS_NAME = "LiwiIngress"
MODEL_NAME = "LiwiModel"


@serve.deployment(
    name=MODEL_NAME,
    max_ongoing_requests=16,  # > max_batch_size so a full batch can form on one replica
    max_queued_requests=64,  # beyond this the handle answers BackPressureError → 503
    backpressure_config={"status_code": 503, "retry_after_s": 1},
    ray_actor_options={"num_cpus": 1},
)
class LiwiModel:
    """One decomposer per served method per replica; requests are batched with ``@serve.batch``.

    The ``model`` method (the Predictor with the configured prior) loads at start, since
    readiness means it answers; ``prior`` is built on its first request and shares the
    Predictor's loaded prior network.
    """

    def __init__(self, args: dict[str, Any]):
        self.settings = ServeAppArgs.from_dict(args, source="LiwiModel args")
        self.prior_ref = self.settings.resolved_prior()
        self.decomposers: dict[str, Any] = {}
        self._build_lock = threading.Lock()
        t0 = time.perf_counter()
        self.predictor = self.decomposer("model")
        self.load_s = time.perf_counter() - t0
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.identity = describe_model(self.settings.model_uri)
        self.decompose_batch.set_max_batch_size(self.settings.max_batch_size)
        self.decompose_batch.set_batch_wait_timeout_s(self.settings.batch_wait_timeout_s)
        self.batch_sizes: list[int] = []  # recent batch sizes, for /v1/models
        log.info(
            "LiwiModel loaded %s (prior %s) in %.2fs", self.identity, self.prior_ref, self.load_s
        )

    def decomposer(self, method: str):
        """The replica's decomposer for ``method``, built on first use (thread-safe)."""
        with self._build_lock:
            if method not in self.decomposers:
                self.decomposers[method] = self._build(method)
            return self.decomposers[method]

    def _build(self, method: str):
        from liwi.decomposers import PriorDecomposer, build_decomposer

        settings = self.settings
        if method == "prior":
            if self.prior_ref is None:
                raise ApiError(
                    422, "bad_method", "method: 'prior' needs a prior; this server runs prior: none"
                )
            model = self.decomposers.get("model")
            shared = getattr(model, "prior", None)
            if getattr(shared, "weight", None) != self.prior_ref:
                shared = None
            return PriorDecomposer(self.prior_ref, device=settings.device, salient=shared)
        return build_decomposer(method, settings.model_uri, self.prior_ref, settings.device)

    def model_ref(self, method: str = "model") -> dict[str, Any]:
        ref = {"uri": self.identity["uri"], "version": self.identity["version"]}
        if method != "model":
            ref = {"uri": self.decomposer(method).source, "version": None}
        return {**ref, "method": method, "prior": self.prior_ref}

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def decompose_batch(self, jobs: list[tuple]) -> list[tuple]:
        """Run one batch through the decomposers in a worker thread (the loop keeps queuing).

        Each result is ``(LayerStack | ApiError, predict_ms)``; predict_ms is the batch's time.
        """
        self.batch_sizes = (self.batch_sizes + [len(jobs)])[-100:]
        t0 = time.perf_counter()
        results = await asyncio.to_thread(self._run_batch, jobs)
        ms = round((time.perf_counter() - t0) * 1e3, 2)
        return [(r, ms) for r in results]

    def _run_batch(self, jobs: list[tuple]) -> list[LayerStack | ApiError]:
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
                stacks = self._run_group(self.decomposer(method), images, prompts, max_layers)
            except ApiError as exc:
                stacks = [exc] * len(idx)
            for i, stack in zip(idx, stacks, strict=True):
                results[i] = stack
        return results

    @staticmethod
    def _run_group(decomposer, images, prompts, max_layers) -> list[LayerStack | ApiError]:
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

    async def decompose(self, image, prompt: Prompt | None, max_layers: int, method: str = "model"):
        """One request: ``(packed stack, model_ref, timings_ms)``, or an ApiError (422) as a value.

        Returned, not raised: the ingress gets it intact instead of wrapped in a RayTaskError.
        """
        result, predict_ms = await self.decompose_batch((image, prompt, max_layers, method))
        if isinstance(result, ApiError):
            return result
        # Cropping to 8 bit runs in a worker thread, beside the next batch, not inside it.
        packed = await asyncio.to_thread(pack_stack, result)
        return packed, self.model_ref(method), {"predict": predict_ms}

    def info(self) -> dict[str, Any]:
        sizes = self.batch_sizes
        return {
            **self.identity,
            "loaded_at": self.loaded_at,
            "device": str(self.predictor.device),
            "config": self.predictor.config.model_dump(),
            "prior": self.prior_ref,
            "methods": ["model", "prior"] if self.prior_ref else ["model"],
            "batching": {
                "max_batch_size": self.settings.max_batch_size,
                "batch_wait_timeout_s": self.settings.batch_wait_timeout_s,
                "recent_mean_batch_size": round(sum(sizes) / len(sizes), 3) if sizes else None,
            },
        }

    def ready(self) -> bool:
        return self.predictor is not None


def to_predictor_prompt(prompt: Prompt | None) -> Prompt | None:
    """The predictor's prompt for a request's: None when there is none or it is empty."""
    return None if prompt is None or prompt.empty else prompt


def describe_model(uri: str | None) -> dict[str, Any]:
    """URI, name, version and source of a model, for ``/v1/models`` and every response.

    Registry URIs report the registry version (``models:/liwi@champion`` → its version
    number); files report the first 12 hex digits of their sha256, so two servers that
    say the same version hold the same weights.
    """
    import hashlib

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


class ServeBackend:
    """:class:`~liwi.serving.api.ModelBackend` over a handle to :class:`LiwiModel`."""

    def __init__(self, handle: DeploymentHandle, settings: ServeAppArgs):
        self.handle = handle
        self.settings = settings

    async def _call(self, method: str, *args):
        from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

        response = getattr(self.handle, method).remote(*args)
        try:
            return await response
        except asyncio.CancelledError:
            response.cancel()  # the ingress timed out: free the model replica's slot
            raise
        except BackPressureError as exc:
            retry = exc.retry_after_s if exc.retry_after_s is not None else None
            retry = self.settings.retry_after_s if retry is None else retry
            raise ApiError(
                503,
                "overloaded",
                "the model queue is full; retry after the Retry-After delay",
                {"Retry-After": str(max(0, int(-(-retry // 1))))},
            ) from None
        except DeploymentUnavailableError as exc:
            raise ApiError(
                503,
                "unavailable",
                f"the model deployment is unavailable: {exc}",
                {"Retry-After": str(self.settings.retry_after_s)},
            ) from None

    async def decompose(self, job: DecomposeJob) -> tuple[PackedStack, dict, dict]:
        result = await self._call("decompose", job.image, job.prompt, job.max_layers, job.method)
        if isinstance(result, ApiError):
            raise result
        return result

    async def info(self) -> dict[str, Any]:
        return await self._call("info")

    async def ready(self) -> bool:
        return bool(await self._call("ready"))


@serve.deployment(
    name=INGRESS_NAME,
    max_ongoing_requests=64,  # the ingress only parses/encodes; the model queue is the limit
    ray_actor_options={"num_cpus": 0.5},
)
@serve.ingress()
class LiwiIngress:
    """HTTP ingress: builds the FastAPI app around a handle to the model deployment."""

    def __init__(self, model: DeploymentHandle, args: dict[str, Any]):
        self.settings = ServeAppArgs.from_dict(args, source="LiwiIngress args")
        self.model = model

    def __serve_build_asgi_app__(self):
        from liwi.serving.api import create_app

        return create_app(self.settings, ServeBackend(self.model, self.settings))


def build_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder (``import_path: liwi.serving.deployments:build_app``)."""
    settings = ServeAppArgs.from_dict(dict(args or {}), source="serve application args")
    plain = settings.to_dict()
    return LiwiIngress.bind(LiwiModel.bind(plain), plain)
