"""Untrusted HTTP input → a validated decomposition job, or an :class:`ApiError`.

Every way a client can get a request wrong ends here as a 4xx with a clear message:
body too large or image too large (413), wrong content type (415), bad JSON (also nested
deeper than :data:`MAX_JSON_DEPTH`), bad form, undecodable image, bad prompt or bad
``max_layers`` (422). Photos above ``work_pixels`` are downscaled while decoding; prompts
stay in the uploaded photo's pixels and are scaled with it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from liwi.imageio import ImageDecodeError, decode_grey, decode_rgb8_sized, header_size
from liwi.model.prompts import Prompt, PromptError
from liwi.serving.schemas import (
    SERVED_METHODS,
    DecomposeJSONRequest,
    PromptIn,
    ResponseFormat,
    ServedMethod,
)
from liwi.serving.settings import ServeAppArgs

# Smallest side we accept: below this there is nothing to decompose.
MIN_SIDE = 8
# Longest/shortest side ratio we accept: beyond this the model's resize degenerates.
MAX_ASPECT = 32.0
# Deepest nesting of JSON we accept (body or prompt field); a real request nests 4 deep.
MAX_JSON_DEPTH = 16


class ApiError(Exception):
    """A client error with its HTTP status, a stable code and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def __reduce__(self):  # keeps status/code/headers when Ray ships it between processes
        return (type(self), (self.status, self.code, self.message, self.headers))


@dataclass
class DecomposeJob:
    """Everything the model deployment needs for one request."""

    image: np.ndarray  # H×W×3 uint8 (4× smaller than float32 on the wire), ≤ work_pixels
    prompt: Prompt | None  # validated, in the pixels of ``image``
    max_layers: int
    format: ResponseFormat
    input_size: tuple[int, int] = (0, 0)  # (width, height) of the upload, after EXIF rotation
    method: ServedMethod = "model"  # liwi.decomposers method the model replica runs
    composite: bool = False  # also answer the recomposed image


def b64decode(text: str, what: str) -> bytes:
    """Strict base64 (standard or URL-safe, ``data:`` URLs allowed) → bytes, else 422."""
    if not isinstance(text, str):
        raise ApiError(422, "bad_base64", f"{what}: expected a base64 string")
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    cleaned = "".join(text.split())
    cleaned = cleaned.replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(422, "bad_base64", f"{what}: not valid base64 ({exc})") from None


def image_size(
    data: bytes, max_pixels: int, what: str = "image", oriented: bool = True
) -> tuple[int, int]:
    """Read only the header: (width, height), after EXIF rotation if ``oriented`` (a PNG
    may keep its EXIF after the pixels: asking decodes it); 413 above ``max_pixels``, 422
    if unreadable."""
    if not data:
        raise ApiError(422, "empty_image", f"{what}: empty file (0 bytes)")
    try:
        # our own limit below, with our message
        w, h = header_size(data, max_pixels=2**62, oriented=oriented)
    except ImageDecodeError as exc:
        if "decompression bomb" in str(exc):
            raise ApiError(413, "image_too_large", f"{what}: {exc}") from None
        raise ApiError(422, "undecodable_image", f"{what}: {exc}") from None
    if w * h > max_pixels:
        raise ApiError(
            413,
            "image_too_large",
            f"{what}: {w}×{h} = {w * h} pixels exceeds the limit of {max_pixels} pixels",
        )
    return w, h


def decode_image(
    data: bytes, max_pixels: int, work_pixels: int | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """Image bytes → (H×W×3 uint8 at most ``work_pixels``, the upload's (width, height)).

    Size and aspect are checked on the header (413/422) before any pixel is decoded; a
    larger photo is downscaled while decoding (:func:`liwi.imageio.open_image`).
    """
    w, h = image_size(data, max_pixels, oriented=False)  # both checks are symmetric in w, h
    if min(h, w) < MIN_SIDE:
        raise ApiError(
            422, "image_too_small", f"image: {w}×{h} is too small (each side ≥ {MIN_SIDE} px)"
        )
    if max(h, w) / min(h, w) > MAX_ASPECT:
        raise ApiError(
            422, "bad_aspect_ratio", f"image: {w}×{h} is more elongated than 1:{MAX_ASPECT:g}"
        )
    try:
        return decode_rgb8_sized(data, max_pixels=max_pixels, work_pixels=work_pixels)
    except ImageDecodeError as exc:
        raise ApiError(422, "undecodable_image", f"image: {exc}") from None


def parse_prompt(
    prompt: PromptIn | None,
    input_size: tuple[int, int],
    work_size: tuple[int, int] | None = None,
    max_pixels: int = 2**62,
) -> Prompt | None:
    """The request's prompt → a :class:`Prompt` in working pixels, else 422.

    Coordinates are pixels of the uploaded image (``input_size``, width × height), where
    :meth:`Prompt.validate` checks them; the mask is a base64 greyscale image of that size,
    decoded straight at ``work_size``. Box and points are scaled to ``work_size``.
    """
    if prompt is None:
        return None
    width, height = input_size
    ww, wh = work_size or input_size
    points: list[tuple[float, float]] = []
    for i, p in enumerate(prompt.points or []):
        if len(p) != 2:
            raise ApiError(422, "bad_prompt", f"prompt.points[{i}]: expected [x, y], got {p}")
        points.append((float(p[0]), float(p[1])))
    box = tuple(float(v) for v in prompt.box) if prompt.box is not None else None
    spec = Prompt(box=box, points=points)
    try:
        spec.validate(height, width)
    except PromptError as exc:
        raise ApiError(422, "bad_prompt", f"prompt.{exc}") from None
    spec = spec.scaled(ww / width, wh / height)
    if prompt.mask is not None:
        data = b64decode(prompt.mask, "prompt.mask")
        mw, mh = image_size(data, max_pixels, "prompt.mask")
        if (mw, mh) != (width, height):
            msg = f"prompt.mask shape {mw}×{mh} does not match the image {width}×{height}"
            raise ApiError(422, "bad_prompt", msg)
        try:
            spec.mask = decode_grey(data, max_pixels, size=(ww, wh))
        except ImageDecodeError as exc:
            raise ApiError(422, "bad_prompt", f"prompt.mask: {exc}") from None
    return None if spec.empty else spec


def parse_max_layers(value: Any, settings: ServeAppArgs) -> int:
    """``max_layers``: a JSON integer or a form field of digits; 1 ≤ n ≤ the limit, else 422.

    Strict: ``true``, ``2.0`` and ``[2]`` are not integers.
    """
    if value is None or value == "":
        return settings.default_max_layers
    n = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        n = int(value)
    if n is None:
        raise ApiError(422, "bad_max_layers", f"max_layers: expected an integer, got {value!r}")
    if not 1 <= n <= settings.max_layers_limit:
        raise ApiError(
            422,
            "bad_max_layers",
            f"max_layers: must be between 1 and {settings.max_layers_limit}, got {n}",
        )
    return n


def parse_format(value: Any) -> ResponseFormat:
    if value is None or value == "":
        return "json"
    if value not in ("json", "zip", "psd"):
        raise ApiError(422, "bad_format", f"format: expected json, zip or psd, got {value!r}")
    return value


def parse_flag(value: Any, name: str) -> bool:
    """A boolean: JSON true/false, or a form field ``true``/``false``/``1``/``0``; else 422."""
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise ApiError(422, "bad_request", f"{name}: expected true or false, got {value!r}")


def parse_method(value: Any) -> ServedMethod:
    """``method``: ``model`` (default) or ``prior``; ``add`` and anything else → 422."""
    if value is None or value == "":
        return "model"
    if value == "add":
        raise ApiError(
            422,
            "bad_method",
            "method: 'add' (the ADD agent chain, seconds to minutes per photo) is not served "
            "by the API; run `liwi predict --method add` or the decompose job",
        )
    if value not in SERVED_METHODS:
        raise ApiError(
            422, "bad_method", f"method: expected {' or '.join(SERVED_METHODS)}, got {value!r}"
        )
    return value


def validation_message(exc: ValidationError, prefix: str = "") -> str:
    """A pydantic error as one line per field: ``prompt.box: List should have ...``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{loc}: {err['msg']}" if loc else f"{prefix}{err['msg']}")
    return "; ".join(parts)


def json_depth(obj: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend(
                (child, depth) for child in (node.values() if isinstance(node, dict) else node)
            )
    return deepest


def load_json(text: str | bytes, what: str, code: str) -> Any:
    """Parse JSON from a client; 422 ``code`` when invalid or nested deeper than MAX_JSON_DEPTH.

    Python's parser raises RecursionError (a 500 if unhandled) near 1,000 levels; the
    explicit limit also keeps deep-but-parseable input away from validation.
    """
    too_deep = f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(422, code, f"{what}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ApiError(422, code, too_deep) from None
    if json_depth(obj) > MAX_JSON_DEPTH:
        raise ApiError(422, code, too_deep)
    return obj


def prompt_from_text(text: str | None) -> PromptIn | None:
    """The multipart ``prompt`` field: a JSON object like the JSON body's ``prompt``."""
    if text is None or text.strip() == "":
        return None
    obj = load_json(text, "prompt", "bad_prompt")
    if obj is None:
        return None
    try:
        return PromptIn.model_validate(obj)
    except ValidationError as exc:
        raise ApiError(422, "bad_prompt", validation_message(exc, "prompt.")) from None


def job_from_json(body: bytes, settings: ServeAppArgs) -> DecomposeJob:
    """The ``application/json`` body → a job."""
    obj = load_json(body, "body", "bad_json")
    try:
        req = DecomposeJSONRequest.model_validate(obj)
    except ValidationError as exc:
        raise ApiError(422, "bad_request", validation_message(exc)) from None
    layers = parse_max_layers(req.max_layers, settings)
    fmt = parse_format(req.format)
    method = parse_method(req.method)
    job = _job(b64decode(req.image, "image"), req.prompt, layers, fmt, settings, method)
    job.composite = req.composite
    return job


def _job(
    data: bytes,
    prompt: PromptIn | None,
    layers: int,
    fmt: ResponseFormat,
    settings: ServeAppArgs,
    method: ServedMethod = "model",
) -> DecomposeJob:
    image, input_size = decode_image(data, settings.max_pixels, settings.work_pixels)
    work_size = (image.shape[1], image.shape[0])
    return DecomposeJob(
        image=image,
        prompt=parse_prompt(prompt, input_size, work_size, settings.max_pixels),
        max_layers=layers,
        format=fmt,
        input_size=input_size,
        method=method,
    )


def job_from_form(
    image: bytes | None,
    prompt: str | None,
    max_layers: str | None,
    fmt: str | None,
    settings: ServeAppArgs,
    method: str | None = None,
    composite: str | None = None,
) -> DecomposeJob:
    """The ``multipart/form-data`` fields → a job (``image`` is the file part's bytes)."""
    if image is None:
        raise ApiError(422, "missing_image", "image: the form needs a file field named 'image'")
    fmt_checked = parse_format(fmt)
    layers = parse_max_layers(max_layers, settings)
    checked = parse_method(method)
    flag = parse_flag(composite, "composite")
    job = _job(image, prompt_from_text(prompt), layers, fmt_checked, settings, checked)
    job.composite = flag
    return job
