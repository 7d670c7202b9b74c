"""Export a :class:`~liwi.layers.LayerStack` to a ZIP of PNGs, a folder or a layered PSD.

Layers are stored cropped to their box (:mod:`liwi.layer_pack`): one PNG per layer named
``NN_<name>.png`` (back to front), placed at ``x``/``y`` on a ``width``×``height`` canvas
as ``layers.json`` says (the PSD layers carry the same offsets). A grey shadow is one
8-bit grey channel holding its attenuation ``S`` (``mode: "L"``, 255 = no shadow).
Summaries, on request: ``background.png``, ``foreground.png``, ``shadow.png`` (8-bit
total attenuation, full size), ``recomposed.png``. The PSD uses Multiply for shadows.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from liwi.imageio import encode_png
from liwi.layer_pack import PackedLayer, PackedStack, pack, unpack
from liwi.layers import LayerStack

# Every summary image a folder can hold; `liwi predict` writes them all, the API none
# unless asked (it answers the recomposed image only on request).
SUMMARIES: tuple[str, ...] = ("background", "foreground", "shadow", "recomposed")
# Bumped when the layout changes: 2 = layers cropped to boxes with offsets in layers.json.
LAYOUT_VERSION = 2
# The layout of `liwi predict` folders (write_folder): full-size layer PNGs, kept stable.
FULL_SIZE_LAYOUT = 1


def layer_filename(index: int, name: str) -> str:
    """File name of the ``index``-th layer (0 = background) in exports."""
    return f"{index:02d}_{name}.png"


def as_packed(stack: LayerStack | PackedStack) -> PackedStack:
    return stack if isinstance(stack, PackedStack) else pack(stack)


def summary_images(stack: LayerStack, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The full-size summary images ``names`` (of :data:`SUMMARIES`) of ``stack``."""
    makers = {
        "background": lambda: stack.background,
        "foreground": stack.foreground,
        "shadow": lambda: stack.total_attenuation().mean(axis=2),
        "recomposed": stack.composite,
    }
    unknown = set(names) - set(makers)
    if unknown:
        raise ValueError(f"unknown summaries {sorted(unknown)}; choose from {SUMMARIES}")
    return {name: makers[name]() for name in names}


def export_files(
    stack: LayerStack | PackedStack,
    summaries: Iterable[str] = SUMMARIES,
    map_fn: Callable = map,
) -> dict[str, bytes]:
    """Every export file as ``{name: bytes}``: cropped layer PNGs, summaries, manifest.

    ``map_fn`` runs the PNG encodes (``ThreadPoolExecutor.map`` encodes them in
    parallel: Pillow releases the GIL while compressing).
    """
    packed = as_packed(stack)
    names = [layer_filename(i, layer.name) for i, layer in enumerate(packed.layers)]
    images = [layer.pixels for layer in packed.layers]
    summaries = list(summaries)
    if summaries:
        full = stack if isinstance(stack, LayerStack) else unpack(packed)
        for name, image in summary_images(full, summaries).items():
            names.append(f"{name}.png")
            images.append(image)
    files = dict(zip(names, map_fn(encode_png, images), strict=True))
    files["layers.json"] = json.dumps(manifest_of(packed), indent=2, default=str).encode()
    return files


def manifest_of(packed: PackedStack) -> dict:
    """``layers.json``: the stack's manifest, each layer with its file and box."""
    manifest = dict(packed.manifest)
    manifest["layout_version"] = LAYOUT_VERSION
    manifest["layers"] = [
        {**layer.entry(), "file": layer_filename(i, layer.name)}
        for i, layer in enumerate(packed.layers)
    ]
    return manifest


def to_zip(
    stack: LayerStack | PackedStack, summaries: Iterable[str] = SUMMARIES, map_fn: Callable = map
) -> bytes:
    """A ZIP archive (stored, not deflated: PNGs are compressed) of :func:`export_files`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in export_files(stack, summaries, map_fn).items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_folder(stack: LayerStack, out_dir: str | Path, psd: bool = False) -> Path:
    """The output contract of ``liwi predict``: full-size layers, every summary, manifest.

    ``DIR/background.png`` (RGB), ``foreground.png`` (RGBA), ``shadow.png`` (8-bit grey
    total attenuation, 255 = no shadow), ``recomposed.png``, one full-size RGBA PNG per
    layer (``NN_<name>.png``; shadows as their multiply layer) and ``layers.json`` with
    ``layout_version`` 1. The folder layout stays fixed for tools that score or read it;
    the cropped layout (:func:`export_files`) is what the API and ZIPs carry.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = stack.manifest()
    manifest["layout_version"] = FULL_SIZE_LAYOUT
    for i, (layer, entry) in enumerate(zip(stack.layers(), manifest["layers"], strict=True)):
        entry["file"] = layer_filename(i, layer.name)
        pixels = layer.rgba[..., :3] if layer.kind == "background" else layer.rgba
        (out / entry["file"]).write_bytes(encode_png(pixels))
    for name, image in summary_images(stack, SUMMARIES).items():
        (out / f"{name}.png").write_bytes(encode_png(image))
    (out / "layers.json").write_text(json.dumps(manifest, indent=2, default=str))
    if psd:
        (out / "layers.psd").write_bytes(to_psd(stack))
    return out


def _psd_pil(layer: PackedLayer):
    """A cropped layer as the RGBA PIL image of its PSD layer."""
    from PIL import Image

    px = layer.pixels
    if layer.mode == "L":  # grey attenuation S → black with alpha 1 − S (multiply)
        px = np.dstack([np.zeros(px.shape + (3,), np.uint8), 255 - px])
    elif layer.mode == "RGB":
        px = np.dstack([px, np.full(px.shape[:2], 255, np.uint8)])
    return Image.fromarray(np.ascontiguousarray(px), "RGBA")


def to_psd(stack: LayerStack | PackedStack) -> bytes:
    """A layered RGB PSD: background, then shadow (Multiply) / object (Normal) pairs, each
    layer cropped to its box at its offset."""
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import BlendMode

    packed = as_packed(stack)
    psd = PSDImage.new("RGB", (packed.width, packed.height))
    for layer in packed.layers:
        px = PixelLayer.frompil(_psd_pil(layer), psd, name=layer.name, top=layer.y, left=layer.x)
        px.blend_mode = BlendMode.MULTIPLY if layer.blend == "multiply" else BlendMode.NORMAL
    buf = io.BytesIO()
    psd.save(buf)
    return buf.getvalue()


def psd_composite(data: bytes) -> np.ndarray:
    """Composite a PSD with psd-tools (a renderer we did not write) to float32 H×W×3."""
    from psd_tools import PSDImage

    psd = PSDImage.open(io.BytesIO(data))
    img = psd.composite(force=True)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
