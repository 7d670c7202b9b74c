"""Export a :class:`~liwi.layers.LayerStack` to a ZIP of PNGs or a layered PSD.

ZIP layout: one PNG per layer named ``NN_<name>.png`` (back to front), plus
``background.png``, ``foreground.png``, ``shadow.png`` (8-bit total attenuation, 255 =
no shadow), ``recomposed.png`` and the ``layers.json`` manifest. The PSD holds the same
stack with Multiply blending on the shadow layers.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from liwi.imageio import encode_png, to_uint8
from liwi.layers import LayerStack


def layer_filename(index: int, name: str) -> str:
    """File name of the ``index``-th layer (0 = background) in exports."""
    return f"{index:02d}_{name}.png"


def export_files(stack: LayerStack) -> dict[str, bytes]:
    """Every export file as ``{name: bytes}``: the per-layer PNGs, summaries and manifest."""
    files: dict[str, bytes] = {}
    manifest = stack.manifest()
    for i, (layer, entry) in enumerate(zip(stack.layers(), manifest["layers"], strict=True)):
        fname = layer_filename(i, layer.name)
        entry["file"] = fname
        files[fname] = encode_png(layer.rgba if layer.kind != "background" else layer.rgba[..., :3])
    files["background.png"] = encode_png(stack.background)
    files["foreground.png"] = encode_png(stack.foreground())
    files["shadow.png"] = encode_png(stack.total_attenuation().mean(axis=2))
    files["recomposed.png"] = encode_png(stack.composite())
    files["layers.json"] = json.dumps(manifest, indent=2, default=str).encode()
    return files


def to_zip(stack: LayerStack) -> bytes:
    """A ZIP archive of :func:`export_files`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in export_files(stack).items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_folder(stack: LayerStack, out_dir: str | Path, psd: bool = False) -> Path:
    """Write :func:`export_files` (and ``layers.psd`` if asked) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in export_files(stack).items():
        (out / name).write_bytes(data)
    if psd:
        (out / "layers.psd").write_bytes(to_psd(stack))
    return out


def to_psd(stack: LayerStack) -> bytes:
    """A layered RGB PSD: background, then shadow (Multiply) / object (Normal) pairs."""
    from PIL import Image
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import BlendMode

    h, w = stack.size
    psd = PSDImage.new("RGB", (w, h))
    for layer in stack.layers():
        rgba = to_uint8(layer.rgba)
        if layer.kind == "background":
            pil = Image.fromarray(rgba[..., :3], "RGB").convert("RGBA")
        else:
            pil = Image.fromarray(rgba, "RGBA")
        px = PixelLayer.frompil(pil, psd, name=layer.name)
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
