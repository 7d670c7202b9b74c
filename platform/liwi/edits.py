"""Edit operations on a :class:`~liwi.layers.LayerStack`, and the versioned ops format.

An edit list is JSON (``docs/editing.md``)::

    {"version": 1, "ops": [
        {"op": "move", "object": 0, "dx": 40, "dy": -10},
        {"op": "shadow", "object": 0, "strength": 0.5, "softness": 4},
        {"op": "remove", "object": 1}
    ]}

``object`` indexes the stack as it is when the op runs: objects back to front, 0 = the
back-most, the same numbering as ``object_index`` in ``layers.json``. Every op is a pure
function of the stack (new arrays, the input untouched), and a shadow always travels
with its object: move, scale and insert carry it, remove drops it. Bad ops (unknown op or
key, an object that does not exist, a non-finite number, a move that puts the object
entirely off the canvas) raise :class:`EditError` with a one-line reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from liwi.layers import LayerStack, ObjectLayer

OPS_VERSION = 1


class EditError(ValueError):
    """An edit list that cannot be applied; the message says which op and why."""


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    object: int = Field(ge=0)  # index in the current stack, back to front


class Move(_Op):
    op: Literal["move"]
    dx: float  # px, + = right
    dy: float  # px, + = down


class Scale(_Op):
    op: Literal["scale"]
    factor: float = Field(gt=0.05, le=20.0)  # about the centre of the object's box


class Remove(_Op):
    op: Literal["remove"]


class Reorder(_Op):
    op: Literal["reorder"]
    to: int = Field(ge=0)  # new index (0 = back-most)


class Recolor(_Op):
    op: Literal["recolor"]
    hue: float = Field(0.0, ge=-180.0, le=180.0)  # degrees added to the hue
    saturation: float = Field(1.0, ge=0.0, le=4.0)  # factor on saturation
    brightness: float = Field(1.0, ge=0.0, le=4.0)  # factor on value


class Shadow(_Op):
    op: Literal["shadow"]
    strength: float = Field(1.0, ge=0.0, le=3.0)  # factor on the shadow's opacity
    softness: float = Field(0.0, ge=0.0, le=200.0)  # Gaussian blur sigma, px


class Insert(_Op):
    op: Literal["insert"]
    source: str  # a layers folder written by `liwi predict` (its object `object` is taken)
    dx: float = 0.0  # px offset of the inserted object (and its shadow)
    dy: float = 0.0


EditOp = Annotated[
    Move | Scale | Remove | Reorder | Recolor | Shadow | Insert, Field(discriminator="op")
]


class EditList(BaseModel):
    """The versioned ops file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = OPS_VERSION
    ops: list[EditOp] = Field(default_factory=list)

    @classmethod
    def parse(cls, data: str | bytes | dict[str, Any]) -> EditList:
        """From JSON text or a dict; any problem is one :class:`EditError` line."""
        try:
            raw = json.loads(data) if isinstance(data, str | bytes) else data
            return cls.model_validate(raw)
        except json.JSONDecodeError as exc:
            raise EditError(f"ops: not valid JSON ({exc})") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EditError(f"ops: {where}: {first['msg']}") from None


# -- pixel helpers ------------------------------------------------------------------------


def _warp(rgba: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Affine-warp a straight-alpha RGBA layer (premultiplied while resampled)."""
    import cv2

    h, w = rgba.shape[:2]
    a = rgba[..., 3:4]
    premult = np.concatenate([rgba[..., :3] * a, a], axis=2)
    out = cv2.warpAffine(
        premult, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    alpha = np.clip(out[..., 3:4], 0.0, 1.0)
    rgb = np.where(alpha > 1e-6, out[..., :3] / np.maximum(alpha, 1e-6), 0.0)
    return np.concatenate([np.clip(rgb, 0.0, 1.0), alpha], axis=2).astype(np.float32)


def _transform(obj: ObjectLayer, matrix: np.ndarray) -> ObjectLayer:
    return ObjectLayer(
        rgba=_warp(obj.rgba, matrix),
        shadow=_warp(obj.shadow, matrix),
        label=obj.label,
        scores=dict(obj.scores),
    )


def _check_index(stack: LayerStack, i: int, what: str) -> None:
    if i >= len(stack.objects):
        raise EditError(f"{what}: no object {i} (the stack has {len(stack.objects)})")


# -- the operations -----------------------------------------------------------------------


def move(stack: LayerStack, i: int, dx: float, dy: float) -> LayerStack:
    """Object ``i`` and its shadow shifted by (dx, dy) px."""
    _check_index(stack, i, "move")
    h, w = stack.size
    x0, y0, x1, y1 = stack.objects[i].bbox
    if x1 > x0 and (x1 + dx <= 0 or x0 + dx >= w or y1 + dy <= 0 or y0 + dy >= h):
        raise EditError(f"move: dx={dx:g}, dy={dy:g} puts object {i} entirely off the canvas")
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return _replace(stack, i, _transform(stack.objects[i], matrix))


def scale(stack: LayerStack, i: int, factor: float) -> LayerStack:
    """Object ``i`` and its shadow scaled by ``factor`` about the object's box centre."""
    _check_index(stack, i, "scale")
    x0, y0, x1, y1 = stack.objects[i].bbox
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    matrix = np.float32([[factor, 0, cx * (1 - factor)], [0, factor, cy * (1 - factor)]])
    return _replace(stack, i, _transform(stack.objects[i], matrix))


def remove(stack: LayerStack, i: int) -> LayerStack:
    """The stack without object ``i`` (its shadow goes with it)."""
    _check_index(stack, i, "remove")
    objects = [o for k, o in enumerate(stack.objects) if k != i]
    return LayerStack(background=stack.background.copy(), objects=objects, meta=dict(stack.meta))


def reorder(stack: LayerStack, i: int, to: int) -> LayerStack:
    """Object ``i`` moved to position ``to`` (0 = back-most)."""
    _check_index(stack, i, "reorder")
    _check_index(stack, to, "reorder.to")
    objects = list(stack.objects)
    objects.insert(to, objects.pop(i))
    return LayerStack(background=stack.background.copy(), objects=objects, meta=dict(stack.meta))


def recolor(
    stack: LayerStack, i: int, hue: float = 0.0, saturation: float = 1.0, brightness: float = 1.0
) -> LayerStack:
    """Object ``i``'s colour shifted in hue (degrees) and scaled in saturation and value."""
    import cv2

    _check_index(stack, i, "recolor")
    obj = stack.objects[i]
    hsv = cv2.cvtColor(np.ascontiguousarray(obj.rgba[..., :3]), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + hue) % 360.0
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0.0, 1.0)
    hsv[..., 2] = np.clip(hsv[..., 2] * brightness, 0.0, 1.0)
    rgb = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)
    rgba = np.concatenate([rgb, obj.rgba[..., 3:]], axis=2)
    new = ObjectLayer(rgba=rgba, shadow=obj.shadow.copy(), label=obj.label, scores=obj.scores)
    return _replace(stack, i, new)


def shadow(stack: LayerStack, i: int, strength: float = 1.0, softness: float = 0.0) -> LayerStack:
    """Object ``i``'s shadow with its opacity scaled by ``strength`` and blurred by ``softness``."""
    import cv2

    _check_index(stack, i, "shadow")
    obj = stack.objects[i]
    sh = obj.shadow.copy()
    sh[..., 3] = np.clip(sh[..., 3] * strength, 0.0, 1.0)
    if softness > 0:
        a = sh[..., 3:4]
        premult = np.concatenate([sh[..., :3] * a, a], axis=2)
        blurred = cv2.GaussianBlur(premult, (0, 0), softness)
        alpha = np.clip(blurred[..., 3:4], 0.0, 1.0)
        rgb = np.where(alpha > 1e-6, blurred[..., :3] / np.maximum(alpha, 1e-6), 0.0)
        sh = np.concatenate([np.clip(rgb, 0.0, 1.0), alpha], axis=2).astype(np.float32)
    new = ObjectLayer(rgba=obj.rgba.copy(), shadow=sh, label=obj.label, scores=obj.scores)
    return _replace(stack, i, new)


def insert(
    stack: LayerStack, donor: LayerStack, i: int, dx: float = 0.0, dy: float = 0.0
) -> LayerStack:
    """Object ``i`` of ``donor`` (with its shadow) pasted on top, offset by (dx, dy) px.

    A donor of another size is placed by its top-left corner and cropped to this canvas.
    """
    if i >= len(donor.objects):
        raise EditError(f"insert: the source has no object {i} ({len(donor.objects)} objects)")
    h, w = stack.size
    src = donor.objects[i]
    dh, dw = donor.size

    def fit(layer: np.ndarray) -> np.ndarray:
        canvas = np.zeros((h, w, 4), np.float32)
        canvas[: min(h, dh), : min(w, dw)] = layer[: min(h, dh), : min(w, dw)]
        return canvas

    placed = ObjectLayer(rgba=fit(src.rgba), shadow=fit(src.shadow), label=src.label)
    if dx or dy:
        placed = _transform(placed, np.float32([[1, 0, dx], [0, 1, dy]]))
    objects = [*stack.objects, placed]
    return LayerStack(background=stack.background.copy(), objects=objects, meta=dict(stack.meta))


def _replace(stack: LayerStack, i: int, obj: ObjectLayer) -> LayerStack:
    objects = list(stack.objects)
    objects[i] = obj
    return LayerStack(background=stack.background.copy(), objects=objects, meta=dict(stack.meta))


def apply_edits(
    stack: LayerStack,
    edits: EditList,
    load_stack: Callable[[str], LayerStack] | None = None,
) -> LayerStack:
    """Apply every op in order; ``load_stack`` reads an ``insert`` op's source folder."""
    for k, op in enumerate(edits.ops):
        try:
            if isinstance(op, Move):
                stack = move(stack, op.object, op.dx, op.dy)
            elif isinstance(op, Scale):
                stack = scale(stack, op.object, op.factor)
            elif isinstance(op, Remove):
                stack = remove(stack, op.object)
            elif isinstance(op, Reorder):
                stack = reorder(stack, op.object, op.to)
            elif isinstance(op, Recolor):
                stack = recolor(stack, op.object, op.hue, op.saturation, op.brightness)
            elif isinstance(op, Shadow):
                stack = shadow(stack, op.object, op.strength, op.softness)
            else:  # Insert
                loader = load_stack or read_layers_folder
                stack = insert(stack, loader(op.source), op.object, op.dx, op.dy)
        except EditError as exc:
            raise EditError(f"ops[{k}] {exc}") from None
    return stack


def read_layers_folder(folder: str | Path) -> LayerStack:
    """The stack in a folder written by ``liwi predict`` (``layers.json`` + layer PNGs)."""
    root = Path(folder)

    def read(name: str) -> bytes | None:
        path = root / Path(name).name  # names only: never outside the folder
        return path.read_bytes() if path.is_file() else None

    if not (root / "layers.json").is_file():
        raise EditError(f"{root}: no layers.json (a folder written by `liwi predict` expected)")
    return read_layers(read, str(root))


# Most members and bytes a layers ZIP may hold (a 64-layer stack holds ~70 files; ZIP
# bombs are refused before anything is inflated).
ZIP_MAX_MEMBERS = 256
ZIP_MAX_BYTES = 1 << 30


def read_layers_zip(
    data: bytes, where: str = "layers ZIP", max_pixels: int = 64_000_000
) -> LayerStack:
    """The stack in a ZIP as ``liwi predict``'s folder or the API's ``format=zip`` holds it."""
    import io
    import zipfile

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise EditError(f"{where}: not a ZIP archive ({exc})") from None
    infos = zf.infolist()
    if len(infos) > ZIP_MAX_MEMBERS or sum(i.file_size for i in infos) > ZIP_MAX_BYTES:
        raise EditError(f"{where}: more than {ZIP_MAX_MEMBERS} files or {ZIP_MAX_BYTES} bytes")
    # Members by base name, as the folder reader does (no paths inside the archive).
    members = {Path(i.filename).name: i for i in infos if not i.is_dir()}

    def read(name: str) -> bytes | None:
        info = members.get(Path(name).name)
        if info is None:
            return None
        try:
            return zf.read(info)
        except (zipfile.BadZipFile, ValueError, NotImplementedError, RuntimeError) as exc:
            raise EditError(f"{where}: cannot read {info.filename} ({exc})") from None

    if "layers.json" not in members:
        raise EditError(f"{where}: no layers.json (a ZIP written by `liwi predict` or the API)")
    return read_layers(read, where, max_pixels)


def read_layers(
    read: Callable[[str], bytes | None], where: str, max_pixels: int = 64_000_000
) -> LayerStack:
    """The one parser of the layers format: ``read(name)`` gives a file's bytes (None if
    missing). Cropped layers (``x``/``y``/``mode`` in ``layers.json``) and the older
    full-size layout both load."""
    from PIL import Image

    from liwi.imageio import ImageDecodeError, open_image
    from liwi.layer_pack import PackedLayer, PackedStack, unpack

    try:
        manifest = json.loads(read("layers.json") or b"")
        entries = list(manifest["layers"])
        width, height = int(manifest["width"]), int(manifest["height"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EditError(f"{where}: layers.json is not a layers manifest ({exc})") from None
    if not (width > 0 and height > 0 and width * height <= max_pixels):
        raise EditError(f"{where}: canvas {width}×{height} is empty or above {max_pixels} pixels")
    layers = []
    for entry in entries:
        try:
            kind, name = entry["kind"], str(entry["name"])
            default = "RGB" if kind == "background" else "RGBA"
            mode, x, y = entry.get("mode", default), int(entry.get("x", 0)), int(entry.get("y", 0))
            index = None if entry.get("object_index") is None else int(entry["object_index"])
            data = read(str(entry["file"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EditError(f"{where}: bad layer entry {entry!r:.80} ({exc})") from None
        if data is None:
            raise EditError(f"{where}: layer file {entry['file']} is missing")
        if kind not in ("background", "object", "shadow") or mode not in ("RGB", "RGBA", "L"):
            raise EditError(f"{where}: layer {name}: unknown kind {kind!r} or mode {mode!r}")
        if (kind == "background") != (index is None):
            raise EditError(f"{where}: layer {name}: object_index does not fit kind {kind!r}")
        try:
            img: Image.Image = open_image(data, max_pixels=max_pixels)
            pixels = np.asarray(img.convert(mode), dtype=np.uint8)
        except (ImageDecodeError, OSError, ValueError) as exc:
            raise EditError(f"{where}: layer file {entry['file']}: {exc}") from None
        if not (-width < x < width and -height < y < height):
            raise EditError(f"{where}: layer {name}: offset ({x}, {y}) is off the canvas")
        blend = "multiply" if kind == "shadow" else "normal"
        layers.append(PackedLayer(name, kind, blend, index, x, y, pixels))
    if not any(layer.kind == "background" for layer in layers):
        raise EditError(f"{where}: layers.json lists no background layer")
    manifest.setdefault("meta", {})
    return unpack(PackedStack(width=width, height=height, layers=layers, manifest=manifest))
