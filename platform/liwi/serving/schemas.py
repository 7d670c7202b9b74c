"""Request and response models of the HTTP API; they also make its OpenAPI schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ResponseFormat = Literal["json", "zip", "psd"]
ServedMethod = Literal["model", "prior"]

# Decomposition methods the API serves (``liwi.decomposers``); ``add`` runs the ADD agent
# chain (seconds to minutes per photo) and stays with the CLI and the cluster job.
SERVED_METHODS: tuple[str, ...] = ("model", "prior")

# Media types of the three response formats.
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "zip": "application/zip",
    "psd": "image/vnd.adobe.photoshop",
}


class Strict(BaseModel):
    """Unknown fields are errors and types are strict (``true`` is not 1, ``"3"`` not 3):
    a mistake in a request is reported, not guessed around."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PromptIn(Strict):
    """Which object to lift out. All fields optional; none = the model picks the objects."""

    box: list[float] | None = Field(
        None,
        min_length=4,
        max_length=4,
        description="[x0, y0, x1, y1] in pixels of the input image, x1 > x0, y1 > y0.",
        examples=[[40, 30, 200, 220]],
    )
    points: list[list[float]] | None = Field(
        None,
        max_length=64,
        description="Foreground clicks [[x, y], ...] in pixels of the input image.",
        examples=[[[120, 110]]],
    )
    mask: str | None = Field(
        None,
        description="Base64 PNG (grey or RGBA) the size of the input image; white = object.",
    )


class DecomposeJSONRequest(Strict):
    """The JSON form of ``POST /v1/decompose`` (the multipart form has the same fields)."""

    image: str = Field(
        ..., description="The photo as base64 (PNG, JPEG, WebP, ...); a data: URL is accepted."
    )
    prompt: PromptIn | None = None
    max_layers: int | None = Field(
        None, description="Most layers to return (background + objects); server default if unset."
    )
    format: ResponseFormat = Field("json", description="Response format: json, zip or psd.")
    method: str = Field(
        "model",
        description="model: the LiWi network guided by the server's prior; prior: the "
        "pretrained salient prior alone (no shadows). `add` is CLI-only (`liwi predict "
        "--method add`).",
        json_schema_extra={"enum": list(SERVED_METHODS)},
    )
    composite: bool = Field(False, description="Also answer the recomposed image.")


class LayerOut(BaseModel):
    """One layer of the stack, back to front, cropped to its box on the canvas."""

    name: str = Field(..., examples=["shadow_1"])
    kind: Literal["background", "shadow", "object"]
    blend: Literal["normal", "multiply"]
    object_index: int | None = Field(None, description="Object this shadow/object belongs to.")
    x: int = Field(..., description="Left of the layer's box on the canvas (px).")
    y: int = Field(..., description="Top of the layer's box on the canvas (px).")
    width: int = Field(..., description="Width of the box (the PNG's width).")
    height: int = Field(..., description="Height of the box (the PNG's height).")
    mode: Literal["RGB", "RGBA", "L"] = Field(
        ...,
        description="RGB: the background; RGBA: straight alpha; L: a grey shadow's "
        "attenuation S (255 = no shadow; multiply by S/255).",
    )
    file: str = Field(..., description="The layer's file name in the ZIP format.")
    png: str = Field(..., description="Base64 PNG of the box, in ``mode``.")


class ModelRef(BaseModel):
    """Which model answered."""

    uri: str
    version: str | None = None
    method: str | None = Field(None, description="The decomposition method that ran.")
    prior: str | None = Field(None, description="The salient prior weight, if any.")


class DecomposeResponse(BaseModel):
    """``format=json``: every layer as a base64 PNG plus the stack's manifest."""

    model: ModelRef
    width: int = Field(
        ..., description="Width of the layers (the photo, downscaled to work_pixels)."
    )
    height: int
    input_width: int = Field(..., description="Width of the uploaded photo (after EXIF rotation).")
    input_height: int
    n_layers: int = Field(..., description="Background plus one per object.")
    layers: list[LayerOut]
    composite: str | None = Field(
        None, description="Base64 PNG of the layers recomposed (only with composite=true)."
    )
    manifest: dict[str, Any] = Field(..., description="liwi.layers.LayerStack.manifest().")
    timings_ms: dict[str, float] = Field(default_factory=dict)


class ModelInfo(BaseModel):
    """``GET /v1/models``: what the model deployment has loaded."""

    uri: str = Field(..., description="The URI the model was loaded from.")
    name: str | None = None
    version: str | None = None
    source: str | None = Field(None, description="Resolved file or registry source.")
    loaded_at: str
    device: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    prior: str | None = Field(None, description="Salient prior weight (None: network alone).")
    methods: list[str] = Field(default_factory=list, description="Methods served.")
    batching: dict[str, Any] = Field(default_factory=dict)


class ModelList(BaseModel):
    data: list[ModelInfo]


class Status(BaseModel):
    status: str
    detail: str | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx the API itself produces."""

    detail: str = Field(..., description="What went wrong, in words a person can act on.")
    code: str = Field(..., description="Stable machine-readable reason, e.g. image_too_large.")
