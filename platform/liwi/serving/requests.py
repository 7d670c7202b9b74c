"""Untrusted HTTP input → a validated decomposition job, or an :class:`ApiError`.

Every way a client can get a request wrong ends here as a 4xx with a clear message:
body too large or image too large (413), wrong content type (415), bad JSON, bad form,
undecodable image, bad prompt or bad ``max_layers`` (422).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from liwi.imageio import ImageDecodeError, decode_grey, decode_rgb
from liwi.model.prompts import Prompt, PromptError
from liwi.serving.schemas import DecomposeJSONRequest, PromptIn, ResponseFormat
from liwi.serving.settings import ServeAppArgs

# Smallest side we accept: below this there is nothing to decompose.
MIN_SIDE = 8
# Longest/shortest side ratio we accept: beyond this the model's resize degenerates.
MAX_ASPECT = 32.0


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

    image: np.ndarray  # H×W×3 uint8 (4× smaller than float32 on the wire)
    prompt: Prompt | None  # validated against the image
    max_layers: int
    format: ResponseFormat


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


def image_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """Read only the header: (width, height); 413 above ``max_pixels``, 422 if unreadable."""
    from PIL import Image

    if not data:
        raise ApiError(422, "empty_image", "image: empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
    except Image.DecompressionBombError as exc:
        raise ApiError(413, "image_too_large", f"image: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for junk input
        raise ApiError(
            422, "undecodable_image", f"image: not a recognised image format ({type(exc).__name__})"
        ) from None
    if w * h > max_pixels:
        raise ApiError(
            413,
            "image_too_large",
            f"image: {w}×{h} = {w * h} pixels exceeds the limit of {max_pixels} pixels",
        )
    return w, h


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Image bytes → H×W×3 uint8, with size/aspect checks (413/422)."""
    w, h = image_size(data, max_pixels)
    try:
        rgb = decode_rgb(data, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        raise ApiError(422, "undecodable_image", f"image: {exc}") from None
    h, w = rgb.shape[:2]  # after EXIF rotation
    if min(h, w) < MIN_SIDE:
        raise ApiError(
            422, "image_too_small", f"image: {w}×{h} is too small (each side ≥ {MIN_SIDE} px)"
        )
    if max(h, w) / min(h, w) > MAX_ASPECT:
        raise ApiError(
            422, "bad_aspect_ratio", f"image: {w}×{h} is more elongated than 1:{MAX_ASPECT:g}"
        )
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def parse_prompt(prompt: PromptIn | None, width: int, height: int) -> Prompt | None:
    """The request's prompt → a :class:`Prompt` that passed :meth:`Prompt.validate`, else 422.

    Coordinates are pixels of the input image; the mask is a base64 greyscale image.
    """
    if prompt is None:
        return None
    points: list[tuple[float, float]] = []
    for i, p in enumerate(prompt.points or []):
        if len(p) != 2:
            raise ApiError(422, "bad_prompt", f"prompt.points[{i}]: expected [x, y], got {p}")
        points.append((float(p[0]), float(p[1])))
    mask = None
    if prompt.mask is not None:
        data = b64decode(prompt.mask, "prompt.mask")
        try:
            mask = decode_grey(data)
        except ImageDecodeError as exc:
            raise ApiError(422, "bad_prompt", f"prompt.mask: {exc}") from None
    box = tuple(float(v) for v in prompt.box) if prompt.box is not None else None
    spec = Prompt(mask=mask, box=box, points=points)
    try:
        spec.validate(height, width)
    except PromptError as exc:
        raise ApiError(422, "bad_prompt", f"prompt.{exc}") from None
    return None if spec.empty else spec


def parse_max_layers(value: Any, settings: ServeAppArgs) -> int:
    """``max_layers`` from JSON or a form field; 1 ≤ n ≤ the configured limit, else 422."""
    if value is None or value == "":
        return settings.default_max_layers
    if isinstance(value, bool):
        value = None
    try:
        n = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        n = None
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


def validation_message(exc: ValidationError, prefix: str = "") -> str:
    """A pydantic error as one line per field: ``prompt.box: List should have ...``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{loc}: {err['msg']}" if loc else f"{prefix}{err['msg']}")
    return "; ".join(parts)


def prompt_from_text(text: str | None) -> PromptIn | None:
    """The multipart ``prompt`` field: a JSON object like the JSON body's ``prompt``."""
    if text is None or text.strip() == "":
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(422, "bad_prompt", f"prompt: not valid JSON ({exc})") from None
    if obj is None:
        return None
    try:
        return PromptIn.model_validate(obj)
    except ValidationError as exc:
        raise ApiError(422, "bad_prompt", validation_message(exc, "prompt.")) from None


def job_from_json(body: bytes, settings: ServeAppArgs) -> DecomposeJob:
    """The ``application/json`` body → a job."""
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(422, "bad_json", f"body: not valid JSON ({exc})") from None
    try:
        req = DecomposeJSONRequest.model_validate(obj)
    except ValidationError as exc:
        raise ApiError(422, "bad_request", validation_message(exc)) from None
    image = decode_image(b64decode(req.image, "image"), settings.max_pixels)
    return DecomposeJob(
        image=image,
        prompt=parse_prompt(req.prompt, image.shape[1], image.shape[0]),
        max_layers=parse_max_layers(req.max_layers, settings),
        format=parse_format(req.format),
    )


def job_from_form(
    image: bytes | None,
    prompt: str | None,
    max_layers: str | None,
    fmt: str | None,
    settings: ServeAppArgs,
) -> DecomposeJob:
    """The ``multipart/form-data`` fields → a job (``image`` is the file part's bytes)."""
    if image is None:
        raise ApiError(422, "missing_image", "image: the form needs a file field named 'image'")
    fmt_checked = parse_format(fmt)
    layers = parse_max_layers(max_layers, settings)
    prompt_in = prompt_from_text(prompt)
    arr = decode_image(image, settings.max_pixels)
    return DecomposeJob(
        image=arr,
        prompt=parse_prompt(prompt_in, arr.shape[1], arr.shape[0]),
        max_layers=layers,
        format=fmt_checked,
    )
