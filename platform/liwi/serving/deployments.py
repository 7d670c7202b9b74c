"""Ray Serve deployments: the FastAPI ingress and the batched model, plus ``build_app``.

``serve/config.yaml`` names :func:`build_app` as its ``import_path``; its ``args`` are a
:class:`~liwi.serving.settings.ServeAppArgs`. Deployment options (replicas, autoscaling,
queue limits, CPUs/GPUs) come from the config's ``deployments`` section; the defaults
in the decorators below only matter when the app is run without a config.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from liwi.layer_pack import PackedStack
from liwi.layers import LayerStack
from liwi.model.prompts import Prompt
from liwi.serving.loaded import LoadedModel, describe_model, to_predictor_prompt
from liwi.serving.requests import ApiError, DecomposeJob
from liwi.serving.rollout import MODEL_DEPLOYMENT
from liwi.serving.settings import ServeAppArgs
from liwi.serving.wire import pack_stack

__all__ = [
    "INGRESS_NAME",
    "MODEL_NAME",
    "LiwiIngress",
    "LiwiModel",
    "ServeBackend",
    "build_app",
    "describe_model",
    "to_predictor_prompt",
]

log = logging.getLogger("liwi.serving")

INGRESS_NAME = "LiwiIngress"
MODEL_NAME = MODEL_DEPLOYMENT  # "LiwiModel": the name rollouts pin a version on


@serve.deployment(
    name=MODEL_NAME,
    max_ongoing_requests=16,  # > max_batch_size so a full batch can form on one replica
    max_queued_requests=64,  # beyond this the handle answers BackPressureError → 503
    backpressure_config={"status_code": 503, "retry_after_s": 1},
    ray_actor_options={"num_cpus": 1},
)
class LiwiModel:
    """One decomposer per served method per replica; requests are batched with ``@serve.batch``.

    The model to serve comes from the deployment's ``user_config`` (``{"model_uri": …}``;
    :func:`build_app` sets it to the app's ``model_uri``, a config can pin a version). Serve
    calls :meth:`reconfigure` with it before the replica takes traffic and again, in place,
    whenever it changes: the new model loads beside the old one, then replaces it, so every
    replica rolls onto a pinned version and reports the version it loaded. ``check_health``
    fails until a model is loaded.
    """

    def __init__(self, args: dict[str, Any]):
        self.settings = ServeAppArgs.from_dict(args, source="LiwiModel args")
        self.prior_ref = self.settings.resolved_prior()
        self.loaded: LoadedModel | None = None
        self._swap = asyncio.Lock()  # one reconfigure at a time
        self.decompose_batch.set_max_batch_size(self.settings.max_batch_size)
        self.decompose_batch.set_batch_wait_timeout_s(self.settings.batch_wait_timeout_s)
        self.batch_sizes: list[int] = []  # recent batch sizes, for /v1/models

    async def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Load ``user_config["model_uri"]`` (default: the app's) unless it is already served."""
        config = dict(user_config or {})
        unknown = set(config) - {"model_uri"}
        if unknown:
            raise ValueError(f"LiwiModel user_config: unknown keys {sorted(unknown)}")
        uri = config.get("model_uri", self.settings.model_uri)
        async with self._swap:
            if self.loaded is not None and self.loaded.uri == uri:
                return
            new = await asyncio.to_thread(self.load, uri)
            old, self.loaded = self.loaded, new
        was = f" (was {old.identity['version']})" if old is not None else ""
        log.info(
            "LiwiModel serves %s version %s%s (prior %s), loaded in %.2fs",
            new.identity["uri"], new.identity["version"], was, self.prior_ref, new.load_s,
        )  # fmt: skip

    def load(self, uri: str | None) -> LoadedModel:
        return LoadedModel(uri, self.prior_ref, self.settings.device)

    def check_health(self) -> None:
        """Serve's periodic health check: unhealthy until a model is loaded."""
        if self.loaded is None:
            raise RuntimeError("LiwiModel: no model loaded")

    def _current(self) -> LoadedModel:
        if self.loaded is None:
            raise ApiError(503, "unavailable", "the model is still loading")
        return self.loaded

    # the loaded model's parts, as the replica serves them now
    @property
    def predictor(self):
        return self._current().predictor

    @property
    def decomposers(self) -> dict[str, Any]:
        return self._current().decomposers

    @property
    def identity(self) -> dict[str, Any]:
        return self._current().identity

    def decomposer(self, method: str):
        return self._current().decomposer(method)

    def model_ref(self, method: str = "model") -> dict[str, Any]:
        return self._current().model_ref(method)

    def _run_batch(self, jobs: list[tuple]) -> list[LayerStack | ApiError]:
        return self._current().run_batch(jobs)

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def decompose_batch(self, jobs: list[tuple]) -> list[tuple]:
        """Run one batch through the decomposers in a worker thread (the loop keeps queuing).

        Each result is ``(LayerStack | ApiError, predict_ms, LoadedModel)``: the model that
        computed it, whatever a reconfigure swaps in meanwhile.
        """
        self.batch_sizes = (self.batch_sizes + [len(jobs)])[-100:]
        model = self._current()
        t0 = time.perf_counter()
        results = await asyncio.to_thread(model.run_batch, jobs)
        ms = round((time.perf_counter() - t0) * 1e3, 2)
        return [(r, ms, model) for r in results]

    async def decompose(self, image, prompt: Prompt | None, max_layers: int, method: str = "model"):
        """One request: ``(packed stack, model_ref, timings_ms)``, or an ApiError (422) as a value.

        Returned, not raised: the ingress gets it intact instead of wrapped in a RayTaskError.
        """
        try:
            result, predict_ms, model = await self.decompose_batch(
                (image, prompt, max_layers, method)
            )
        except ApiError as exc:
            return exc
        if isinstance(result, ApiError):
            return result
        # Cropping to 8 bit runs in a worker thread, beside the next batch, not inside it.
        packed = await asyncio.to_thread(pack_stack, result)
        return packed, model.model_ref(method), {"predict": predict_ms}

    def info(self) -> dict[str, Any]:
        model = self._current()
        sizes = self.batch_sizes
        return {
            **model.identity,
            "loaded_at": model.loaded_at,
            "device": str(model.predictor.device),
            "config": model.predictor.config.model_dump(),
            "prior": self.prior_ref,
            "methods": ["model", "prior"] if self.prior_ref else ["model"],
            "batching": {
                "max_batch_size": self.settings.max_batch_size,
                "batch_wait_timeout_s": self.settings.batch_wait_timeout_s,
                "recent_mean_batch_size": round(sum(sizes) / len(sizes), 3) if sizes else None,
            },
        }

    def ready(self) -> bool:
        return self.loaded is not None


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
    """Serve application builder (``import_path: liwi.serving.deployments:build_app``).

    The model deployment's ``user_config`` defaults to the app's ``model_uri``; a config's
    ``deployments: [{name: LiwiModel, user_config: {model_uri: …}}]`` pins another.
    """
    settings = ServeAppArgs.from_dict(dict(args or {}), source="serve application args")
    plain = settings.to_dict()
    model = LiwiModel.options(user_config={"model_uri": settings.model_uri})
    return LiwiIngress.bind(model.bind(plain), plain)
