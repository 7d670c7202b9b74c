"""Sample inputs for tests, demos and benchmarks: procedural scenes, bundled photos, bad files.

* :func:`procedural_scene` draws a small "photo" with known layers: a textured floor and
  wall, one to three objects and the soft cast shadow each object throws on the floor.
  It returns the ground-truth :class:`~liwi.layers.LayerStack`, so its composite is a
  photo whose correct decomposition is known.
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

from liwi.imageio import encode_jpeg, encode_png
from liwi.layers import LayerStack

# Photos bundled with scikit-image (file names inside skimage/data).
BUNDLED = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    coarse = rng.random((cells + 1, cells + 1)).astype(np.float32)
    img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(a.astype(np.float32), sigma)


def procedural_scene(seed: int, size: int = 256, n_objects: int = 1) -> LayerStack:
    """A scene with ``n_objects`` objects and their cast shadows, as a ground-truth stack."""
    rng = np.random.default_rng(seed)
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = int(h * rng.uniform(0.35, 0.5))
    wall = np.array(rng.uniform(0.45, 0.85, 3), np.float32)
    floor = np.array(rng.uniform(0.3, 0.7, 3), np.float32)
    tex = _smooth_noise(rng, h, w, 12)[..., None]
    bg = np.where((yy < horizon)[..., None], wall, floor) * (0.85 + 0.3 * tex)
    bg = bg * (0.9 + 0.1 * (1 - yy / h))[..., None]
    bg += rng.normal(0, 0.01, bg.shape).astype(np.float32)  # sensor noise
    colors, alphas, shadows = [], [], []
    for k in range(n_objects):
        cx = w * (k + 1) / (n_objects + 1) + rng.uniform(-0.05, 0.05) * w
        rx = w * rng.uniform(0.08, 0.14) / max(1, n_objects * 0.7)
        ry = h * rng.uniform(0.12, 0.2)
        base_y = horizon + (h - horizon) * rng.uniform(0.45, 0.7)
        cy = base_y - ry
        d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
        alpha = np.clip((1.0 - d) * max(rx, ry) / 1.5, 0.0, 1.0)  # ~1.5 px soft edge
        hue = np.array(rng.uniform(0.05, 0.95, 3), np.float32)
        hue[k % 3] = rng.uniform(0.8, 1.0)  # one saturated channel: distinct from the floor
        shade = 0.7 + 0.3 * np.clip(1 - (xx - cx + rx) / (2 * rx), 0, 1)  # lit from the left
        color = np.clip(hue * shade[..., None] + 0.03 * tex, 0, 1)
        # Cast shadow: a flattened ellipse at the object's foot, offset away from the light.
        sx, sy = cx + rx * 0.9, base_y + ry * 0.05
        ds = ((xx - sx) / (rx * 1.8)) ** 2 + ((yy - sy) / (ry * 0.3)) ** 2
        strength = rng.uniform(0.35, 0.55)
        s = 1.0 - strength * _blur((ds < 1.0).astype(np.float32), max(1.5, rx * 0.15))
        colors.append(color.astype(np.float32))
        alphas.append(alpha.astype(np.float32))
        shadows.append(s.astype(np.float32))
    return LayerStack.from_arrays(
        np.clip(bg, 0, 1).astype(np.float32),
        colors,
        alphas,
        shadows,
        labels=[f"blob_{k + 1}" for k in range(n_objects)],
        meta={"generator": "procedural_scene", "seed": seed},
    )


def procedural_photo(seed: int, size: int = 256, n_objects: int = 1, jpeg: bool = True) -> bytes:
    """Encoded photo (JPEG or PNG) of :func:`procedural_scene`."""
    img = procedural_scene(seed, size, n_objects).composite()
    return encode_jpeg(img, quality=92) if jpeg else encode_png(img)


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
