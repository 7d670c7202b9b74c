"""The FastAPI application: routes, API-key check, body-size limit and error mapping.

:func:`create_app` builds the ASGI app around a :class:`ModelBackend`; on Ray Serve the
backend is the batched model deployment (see :mod:`liwi.serving.deployments`). Any
client input ends in a 2xx or a 4xx with ``{"detail", "code"}``; 503 means "try again"
(queue full, model not ready), 504 means the request ran past its time budget.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from importlib import resources
from typing import Any, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from liwi import __version__
from liwi.layer_pack import PackedStack
from liwi.serving import encoders
from liwi.serving.recompose import RECOMPOSE_REQUEST_BODY, read_form, recompose_png
from liwi.serving.requests import ApiError, DecomposeJob, job_from_form, job_from_json
from liwi.serving.schemas import (
    MEDIA_TYPES,
    SERVED_METHODS,
    DecomposeJSONRequest,
    DecomposeResponse,
    ErrorBody,
    ModelInfo,
    ModelList,
    Status,
)
from liwi.serving.settings import ServeAppArgs

log = logging.getLogger("liwi.serving")

STATIC_DIR = resources.files("liwi.serving") / "static"


class ModelBackend(Protocol):
    """What the HTTP layer needs from the model side (a Serve handle or in-process)."""

    async def decompose(self, job: DecomposeJob) -> tuple[PackedStack, dict, dict[str, float]]:
        """The cropped 8-bit stack, a model reference ``{"uri", "version", "method",
        "prior"}`` and the model side's timings (``{"predict": ms}``); may raise ApiError."""

    async def info(self) -> dict[str, Any]:
        """A :class:`ModelInfo` as a dict."""

    async def ready(self) -> bool:
        """True when a model replica answers."""


class BodySizeLimit:
    """ASGI middleware: 413 for bodies above ``max_bytes`` (declared or streamed), 408 when
    the body has not fully arrived ``timeout_s`` after the app first asked for it."""

    def __init__(self, app, max_bytes: int, timeout_s: float | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await error_response(ApiError(413, "body_too_large", self._message(int(declared))))(
                    scope, receive, send
                )
                return
        seen = 0
        deadline: float | None = None
        done = False

        async def counting_receive():
            nonlocal seen, deadline, done
            if done or self.timeout_s is None:
                message = await receive()  # after the body: only a disconnect can come
            else:
                loop = asyncio.get_running_loop()
                deadline = deadline or loop.time() + self.timeout_s
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise ApiError(
                        408,
                        "body_timeout",
                        f"the request body did not arrive within {self.timeout_s:g} s",
                        {"Connection": "close"},
                    ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, "body_too_large", self._message(seen, streamed=True))
            return message

        await self.app(scope, counting_receive, send)

    def _message(self, size: int, streamed: bool = False) -> str:
        got = f"more than {size}" if streamed else str(size)
        return f"request body of {got} bytes exceeds the limit of {self.max_bytes} bytes"


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        {"detail": exc.message, "code": exc.code}, status_code=exc.status, headers=exc.headers
    )


def server_timing(timings_ms: dict[str, float]) -> str:
    """The ``Server-Timing`` header (W3C): ``decode;dur=12.5, model;dur=…`` in ms."""
    return ", ".join(f"{name};dur={ms:g}" for name, ms in timings_ms.items())


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """JSON that tolerates numpy scalars and other non-JSON values in manifests."""

    def fallback(value):
        if hasattr(value, "item"):
            return value.item()
        if hasattr(value, "tolist"):
            return value.tolist()
        return str(value)

    return Response(
        json.dumps(body, default=fallback), status, headers, media_type="application/json"
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "API key missing or wrong."},
    408: {"model": ErrorBody, "description": "The request body did not arrive in time."},
    413: {"model": ErrorBody, "description": "Body or image too large."},
    415: {"model": ErrorBody, "description": "Not multipart/form-data or application/json."},
    422: {
        "model": ErrorBody,
        "description": "Bad JSON (or nested too deep), form, image, prompt, max_layers or method.",
    },
    503: {"model": ErrorBody, "description": "Queue full (see Retry-After) or model not ready."},
    504: {"model": ErrorBody, "description": "The decomposition ran past the request timeout."},
}

# The request body of POST /v1/decompose, written out because the route reads the body
# itself (it takes two content types and must answer bad input with 4xx, not 500).
DECOMPOSE_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "format": "binary", "description": "The photo."},
                    "prompt": {
                        "type": "string",
                        "description": 'JSON object, e.g. {"box": [10, 10, 90, 120]}.',
                    },
                    "max_layers": {"type": "integer"},
                    "format": {"type": "string", "enum": ["json", "zip", "psd"]},
                    "method": {"type": "string", "enum": list(SERVED_METHODS)},
                    "composite": {"type": "boolean", "description": "Add the recomposed image."},
                },
            }
        },
        "application/json": {
            "schema": {"$ref": "#/components/schemas/DecomposeJSONRequest"},
        },
    },
}


def create_app(settings: ServeAppArgs, backend: ModelBackend) -> FastAPI:
    """The LiWi HTTP API around ``backend``, configured by ``settings``."""
    api_key = settings.resolved_api_key()
    app = FastAPI(
        title="LiWi layer decomposition API",
        version=__version__,
        description=(
            "Decompose a photo into an editable stack of RGBA layers: a clean background "
            "and, per object, a shadow layer (multiply) and the object layer (normal). "
            "The web viewer is at `/`."
        ),
    )
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    app.state.settings = settings
    app.state.backend = backend
    # Decodes (CPU + up to max_pixels of 8-bit memory each) run at most this many at once.
    decode_slots = asyncio.Semaphore(settings.max_concurrent_decodes)
    large_slots = asyncio.Semaphore(settings.max_concurrent_large)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()] or [
            "invalid request"
        ]
        return error_response(ApiError(422, "bad_request", "; ".join(parts)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(
            ApiError(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))
        )

    @app.exception_handler(Exception)
    async def _server_error(_: Request, exc: Exception):
        # A bug, not a client error: log it, answer in the API's error shape.
        log.error("unhandled error: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return JSONResponse({"detail": "internal server error (logged)", "code": "internal"}, 500)

    def require_key(request: Request) -> None:
        if api_key is None:
            return
        if not key_matches(presented_keys(request.headers), api_key):
            raise ApiError(
                401,
                "unauthorized",
                "missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key'",
                {"WWW-Authenticate": "Bearer"},
            )

    @app.get("/", include_in_schema=False)
    async def viewer() -> FileResponse:
        return FileResponse(str(STATIC_DIR / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.get("/healthz", response_model=Status, tags=["health"])
    async def healthz() -> Status:
        """Liveness: the HTTP ingress is up."""
        return Status(status="ok")

    @app.get(
        "/readyz",
        response_model=Status,
        tags=["health"],
        responses={503: {"model": Status, "description": "Model not ready."}},
    )
    async def readyz():
        """Readiness: a model replica answers within the readiness timeout."""
        try:
            ok = await asyncio.wait_for(backend.ready(), settings.readiness_timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            return JSONResponse(
                {"status": "not ready", "detail": f"{type(exc).__name__}: {exc}"[:300]}, 503
            )
        if not ok:
            return JSONResponse({"status": "not ready", "detail": "model not loaded"}, 503)
        return Status(status="ready")

    @app.get(
        "/v1/models",
        response_model=ModelList,
        tags=["models"],
        responses={k: v for k, v in ERROR_RESPONSES.items() if k in (401, 503, 504)},
        dependencies=[Depends(require_key)],
    )
    async def models() -> ModelList:
        """Which model (URI, version) the model deployment has loaded."""
        info = await with_timeout(backend.info(), settings.readiness_timeout_s)
        return ModelList(data=[ModelInfo.model_validate(info)])

    @app.post(
        "/v1/decompose",
        tags=["decompose"],
        dependencies=[Depends(require_key)],
        openapi_extra={"requestBody": DECOMPOSE_REQUEST_BODY},
        responses={
            200: {
                "description": "The layer stack in the requested format.",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/DecomposeResponse"}
                    },
                    MEDIA_TYPES["zip"]: {"schema": {"type": "string", "format": "binary"}},
                    MEDIA_TYPES["psd"]: {"schema": {"type": "string", "format": "binary"}},
                },
            },
            **ERROR_RESPONSES,
        },
    )
    async def decompose(request: Request) -> Response:
        """Decompose a photo into background, object and shadow layers.

        Send ``multipart/form-data`` (file field ``image``; fields ``prompt`` as JSON text,
        ``max_layers``, ``format``) or ``application/json`` (``image`` as base64).
        """
        t0 = time.perf_counter()
        job = await read_job(request, settings, decode_slots)
        t1 = time.perf_counter()
        packed, model_ref, model_timings = await call_model(backend, job, settings, large_slots)
        t2 = time.perf_counter()
        if job.format == "json":
            body = await run_in_threadpool(encoders.stack_to_json, packed, model_ref, job.composite)
            body["input_width"], body["input_height"] = job.input_size
        else:
            data, media_type, filename = await run_in_threadpool(
                encoders.encode_stack, packed, job.format, job.composite
            )
        t3 = time.perf_counter()
        timings = {
            "decode": round((t1 - t0) * 1e3, 2),
            "model": round((t2 - t1) * 1e3, 2),  # queue + batch + predict + transfer
            **model_timings,  # predict: the decomposer's time for the request's batch
            "encode": round((t3 - t2) * 1e3, 2),
        }
        headers = {"Server-Timing": server_timing(timings)}
        if job.format == "json":
            body["timings_ms"] = timings
            return json_response(body, headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return Response(data, media_type=media_type, headers=headers)

    @app.post(
        "/v1/recompose",
        tags=["edit"],
        dependencies=[Depends(require_key)],
        openapi_extra={"requestBody": RECOMPOSE_REQUEST_BODY},
        responses={
            200: {
                "description": "The edited stack recomposed, as PNG.",
                "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            },
            **{k: v for k, v in ERROR_RESPONSES.items() if k not in (503, 504)},
        },
    )
    async def recompose(request: Request) -> Response:
        """Apply edit ops (``docs/editing.md``) to a layers ZIP and answer the finished PNG.

        ``multipart/form-data``: file ``layers`` (the ``format=zip`` answer or a zipped
        ``liwi predict`` folder), field ``ops`` (the versioned ops JSON).
        """
        fields = await read_form(request, settings, files=("layers",), texts=("ops",))
        async with decode_slots:
            png = await run_in_threadpool(
                recompose_png, fields["layers"], fields["ops"], settings.max_pixels
            )
        return Response(png, media_type="image/png")

    # Make the JSON request/response schemas appear in components for the $refs above.
    app.openapi_schema = None
    _register_component_schemas(app, [DecomposeJSONRequest, DecomposeResponse])
    return app


async def call_model(
    backend: ModelBackend, job: DecomposeJob, settings: ServeAppArgs, large_slots: asyncio.Semaphore
) -> tuple[PackedStack, dict, dict[str, float]]:
    """The model call within the request's time budget; a large photo (over
    ``settings.large_pixels``) first waits for one of the ``large_slots``."""
    h, w = job.image.shape[:2]

    async def guarded():
        if h * w <= settings.large_pixels:
            return await backend.decompose(job)
        async with large_slots:
            return await backend.decompose(job)

    return await with_timeout(guarded(), settings.request_timeout_s)


async def with_timeout(awaitable, timeout_s: float):
    """Await with a time budget: past it, 504 (the backend cancels its own work)."""
    try:
        return await asyncio.wait_for(awaitable, timeout_s)
    except TimeoutError:
        raise ApiError(
            504, "timeout", f"the model did not answer within {timeout_s:g} s; try again later"
        ) from None


def presented_keys(headers) -> list[str]:
    """The API keys a request presents: ``X-API-Key`` and ``Authorization: Bearer``.

    Empty values and other Authorization schemes (Basic, …) present nothing.
    """
    keys = []
    given = headers.get("x-api-key", "").strip()
    if given:
        keys.append(given)
    auth = headers.get("authorization", "").strip()
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        keys.append(auth[7:].strip())
    return keys


def key_matches(keys: list[str], api_key: str) -> bool:
    """The one auth rule: at least one key presented, and every key presented is the key."""
    expected = api_key.encode()
    return bool(keys) and all(hmac.compare_digest(k.encode(), expected) for k in keys)


async def read_job(
    request: Request, settings: ServeAppArgs, decode_slots: asyncio.Semaphore | None = None
) -> DecomposeJob:
    """Dispatch on the content type; decode in a worker thread (it is CPU work), at most
    ``settings.max_concurrent_decodes`` at a time (the body is read before waiting)."""
    slots = decode_slots or asyncio.Semaphore(settings.max_concurrent_decodes)
    ctype = request.headers.get("content-type", "")
    media = ctype.split(";")[0].strip().lower()
    if media == "application/json":
        body = await request.body()
        async with slots:
            return await run_in_threadpool(job_from_json, body, settings)
    if media == "multipart/form-data":
        try:
            # Text fields (a base64 mask in `prompt`) may be as large as the body limit.
            form = await request.form(
                max_files=4, max_fields=16, max_part_size=settings.max_body_bytes
            )
        except ApiError:
            raise
        except Exception as exc:  # noqa: BLE001 - malformed multipart of any kind
            detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
            raise ApiError(422, "bad_form", f"multipart body: {detail}") from None
        try:
            fields = {}
            for name in ("prompt", "max_layers", "format", "method", "composite"):
                value = form.get(name)
                if value is not None and not isinstance(value, str):
                    raise ApiError(422, "bad_form", f"{name}: expected a text field, got a file")
                fields[name] = value
            image = form.get("image")
            data = None
            if image is not None:
                data = image.encode() if isinstance(image, str) else await image.read()
        finally:
            await form.close()
        async with slots:
            return await run_in_threadpool(
                job_from_form,
                *(data, fields["prompt"], fields["max_layers"], fields["format"], settings),
                fields["method"],
                fields["composite"],
            )
    shown = media or "none"
    raise ApiError(
        415,
        "unsupported_media_type",
        f"content type {shown!r}: send multipart/form-data (field 'image') or application/json",
    )


def _register_component_schemas(app: FastAPI, models: list) -> None:
    """Add pydantic models to the OpenAPI components so hand-written $refs resolve."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components.setdefault(model.__name__, js)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
