"""Sample inputs for tests, demos and benchmarks: procedural scenes, bundled photos, bad files.

* :func:`procedural_scene` / :func:`procedural_photo` re-export the one procedural scene
  generator, :mod:`liwi.synth.procedural` (floor and wall, soft-edged objects, their cast
  shadows, returned as the ground-truth :class:`~liwi.layers.LayerStack`).
* :func:`bundled_photos` returns real photographs shipped inside scikit-image (public
  domain / permissively licensed, no download).
* :func:`bad_input_files` crafts every kind of hostile or unusual file the ADD job must
  survive: empty, truncated, mislabelled, decompression bomb, CMYK, 16-bit, greyscale,
  palette, RGBA, EXIF-rotated and animated images.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from liwi.synth.procedural import procedural_photo, procedural_scene

__all__ = ["bad_input_files", "bundled_photos", "png_bomb", "procedural_photo", "procedural_scene"]

# Photos bundled with scikit-image (file names inside skimage/data).
BUNDLED = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


def bundled_photos(size: int | None = None) -> dict[str, bytes]:
    """Real photos bundled with scikit-image, as JPEG bytes (longest side ``size`` if given)."""
    import os

    import skimage

    root = os.path.join(os.path.dirname(skimage.__file__), "data")
    out = {}
    for name in BUNDLED:
        path = os.path.join(root, name)
        if not os.path.exists(path):
            continue
        img = Image.open(path).convert("RGB")
        if size:
            img.thumbnail((size, size), Image.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=92)
        out[name.rsplit(".", 1)[0] + ".jpg"] = buf.getvalue()
    return out


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares ``width``×``height`` pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _png_chunk(b"IEND", b"")
    )


def _save(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def bad_input_files(seed: int = 0, size: int = 96) -> dict[str, tuple[bytes, str]]:
    """Hostile and unusual inputs: ``{file name: (bytes, expectation)}``.

    ``expectation`` is ``"error"`` (must become an error row) or ``"decodes"`` (must be
    processed like any photo).
    """
    scene = procedural_scene(seed, size).composite()[: size * 2 // 3]  # landscape: W ≠ H
    base = Image.fromarray((scene * 255 + 0.5).astype(np.uint8))
    jpeg = _save(base, "JPEG", quality=90)
    png = _save(base, "PNG")
    rng = np.random.default_rng(seed)
    grey16 = (np.asarray(base.convert("L"), np.float32) * 257).astype(np.uint16)
    grey16 = np.clip(grey16.astype(np.int32) + rng.integers(0, 200, grey16.shape), 0, 65535)
    exif = base.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    frame2 = base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return {
        "empty.jpg": (b"", "error"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "error"),
        "truncated.png": (png[: len(png) // 3], "error"),
        "not_an_image.jpg": (b"this is a text file, not a JPEG\n" * 4, "error"),
        "bomb.png": (png_bomb(), "error"),
        "cmyk.jpg": (_save(base.convert("CMYK"), "JPEG", quality=90), "decodes"),
        "grey16.png": (_save(Image.fromarray(grey16.astype(np.uint16)), "PNG"), "decodes"),
        "grey.png": (_save(base.convert("L"), "PNG"), "decodes"),
        "palette.png": (_save(base.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), "decodes"),
        "rgba.png": (_save(base.convert("RGBA"), "PNG"), "decodes"),
        "exif_rotated.jpg": (_save(base, "JPEG", quality=90, exif=exif.tobytes()), "decodes"),
        "animated.gif": (_save(base, "GIF", save_all=True, append_images=[frame2]), "decodes"),
    }
