"""Image codecs: bytes ⇄ float32 arrays, with clear errors for bad input.

Decoding is defensive: it is the first thing that touches untrusted bytes from a lake
or an HTTP request. Everything that fails raises :class:`ImageDecodeError` with a
reason a person can act on.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageOps

# Largest image we decode, in pixels (about 64 MP). Larger declared sizes are treated as
# decompression bombs and rejected before any pixel is decoded.
MAX_PIXELS = 64_000_000
# Working size of photos for inference (pixels, ≈ 1632×1224 at 4:3). The model itself sees
# 128 px; detail above this only feeds full-resolution float maps (≈ 170 MB per MP in
# the predictor), so `liwi predict` and the API downscale larger photos to it while
# decoding, before any float copy, which keeps one image's peak well under 1.5 GB.
WORK_PIXELS = 2_000_000
# EXIF orientations that swap width and height (transpose, rotate 90/270, transverse).
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


class ImageDecodeError(ValueError):
    """The bytes are not an image we can decode; the message says why."""


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """float [0, 1] → uint8 with rounding (uint8 passes through)."""
    if arr.dtype == np.uint8:
        return arr
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_float(arr: np.ndarray) -> np.ndarray:
    """uint8 → float32 in [0, 1] (floats pass through as float32)."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    return arr.astype(np.float32, copy=False)


def encode_png(arr: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode H×W (L), H×W×3 (RGB) or H×W×4 (RGBA) to PNG bytes.

    ``compress_level`` 1 trades ~10% size for ~5× faster encoding than the default 6.
    """
    img = Image.fromarray(to_uint8(arr))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def encode_jpeg(arr: np.ndarray, quality: int = 95) -> bytes:
    """Encode an RGB image to JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8(arr)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def open_image(
    data: bytes, max_pixels: int = MAX_PIXELS, *, work_pixels: int | None = None
) -> Image.Image:
    """Open and fully decode ``data`` with Pillow, applying the EXIF orientation.

    With ``work_pixels``, an image above that many pixels comes back downscaled to fit it
    (aspect kept): JPEGs decode at a reduced DCT scale (``draft``), others are reduced in
    their 8/16-bit form, so no full-size float copy is ever made. Use
    :func:`open_image_sized` (or :func:`decode_rgb_scaled`) for the size before downscaling.
    """
    return open_image_sized(data, max_pixels, work_pixels=work_pixels)[0]


def open_image_sized(
    data: bytes, max_pixels: int = MAX_PIXELS, *, work_pixels: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """:func:`open_image` plus the source's (width, height) after EXIF rotation, from the
    same single decode (a PNG's EXIF may follow its pixels, so asking first decodes twice)."""
    img = _open_checked(data, max_pixels)
    w, h = img.size
    shrink = work_pixels is not None and w * h > work_pixels
    try:
        if shrink:
            f = math.sqrt(work_pixels / (w * h))
            img.draft(None, (max(1, math.ceil(w * f)), max(1, math.ceil(h * f))))  # JPEG only
        img.seek(0)  # animated images: first frame only
        img.load()
        orientation = _orientation(img)
        if shrink:
            img = fit_pixels(img, work_pixels)
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001
        raise ImageDecodeError(f"truncated or corrupt {img.format} data: {exc}") from exc
    return img, ((h, w) if orientation in _SWAPPING_ORIENTATIONS else (w, h))


def _orientation(img: Image.Image) -> int | None:
    try:
        return img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - a broken EXIF block is no orientation
        return None


def header_size(
    data: bytes, max_pixels: int = MAX_PIXELS, oriented: bool = True
) -> tuple[int, int]:
    """(width, height), after EXIF rotation if ``oriented``, checked against ``max_pixels``
    before any pixel is decoded (a PNG whose EXIF follows its pixels is decoded to find
    the orientation; ``oriented=False`` never decodes)."""
    img = _open_checked(data, max_pixels)
    w, h = img.size
    if not oriented:
        return w, h
    return (h, w) if _orientation(img) in _SWAPPING_ORIENTATIONS else (w, h)


def fit_pixels(img: Image.Image, max_pixels: int) -> Image.Image:
    """``img`` downscaled (box filter, aspect kept) to at most ``max_pixels`` pixels."""
    w, h = img.size
    if w * h <= max_pixels:
        return img
    f = math.sqrt(max_pixels / (w * h))
    size = (max(1, math.floor(w * f)), max(1, math.floor(h * f)))
    if img.mode in ("1", "P", "PA"):  # palette/bilevel resize would be nearest-neighbour
        has_alpha = img.mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else ("L" if img.mode == "1" else "RGB"))
    elif img.mode.startswith("I;16"):
        img = img.convert("I")  # Pillow's reduce works on 32-bit, not 16-bit, integers
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV …
    return img.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open ``data`` lazily (header only) and check its declared size."""
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"decompression bomb: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for junk input
        raise ImageDecodeError(f"not a recognised image format ({type(exc).__name__})") from exc
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageDecodeError(f"invalid image size {w}×{h}")
    if w * h > max_pixels:
        raise ImageDecodeError(
            f"image too large: {w}×{h} = {w * h} pixels exceeds the limit of {max_pixels} "
            "(possible decompression bomb)"
        )
    return img


_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I")  # integer modes wider than 8 bit


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode → float32 H×W×3 sRGB (alpha composited on white, 16-bit scaled)."""
    if img.mode in _WIDE_MODES:
        arr = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if arr.max() > 255 else 255.0
        grey = np.clip(arr / peak, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if _has_alpha(img):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        a = rgba[..., 3:4]
        return rgba[..., :3] * a + (1.0 - a)
    if img.mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def decode_rgb(
    data: bytes, max_pixels: int = MAX_PIXELS, *, work_pixels: int | None = None
) -> np.ndarray:
    """Decode image bytes to float32 H×W×3 in [0, 1]; raises :class:`ImageDecodeError`.

    ``work_pixels``: downscale larger images to it while decoding (:func:`open_image`).
    """
    return pil_to_rgb(open_image(data, max_pixels=max_pixels, work_pixels=work_pixels))


def decode_rgb8_sized(
    data: bytes, max_pixels: int = MAX_PIXELS, *, work_pixels: int | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """``to_uint8(decode_rgb(…))`` and the source's (width, height) after EXIF rotation,
    from one decode; 8-bit photos without alpha (most uploads) skip floats entirely."""
    img, size = open_image_sized(data, max_pixels=max_pixels, work_pixels=work_pixels)
    if img.mode in _WIDE_MODES or img.mode == "F" or _has_alpha(img):
        return to_uint8(pil_to_rgb(img)), size
    return np.asarray(img.convert("RGB"), dtype=np.uint8), size


def decode_rgb_scaled(
    data: bytes, max_pixels: int = MAX_PIXELS, work_pixels: int = WORK_PIXELS
) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`decode_rgb` bounded by ``work_pixels``, plus the source's (width, height).

    The source size (after EXIF rotation) lets callers map pixel coordinates given on
    the original photo (prompts) onto the downscaled one.
    """
    img, size = open_image_sized(data, max_pixels=max_pixels, work_pixels=work_pixels)
    return pil_to_rgb(img), size


def decode_rgba(data: bytes) -> np.ndarray:
    """Decode (PNG) bytes to float32 H×W×4 straight alpha."""
    img = open_image(data)
    return np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0


def decode_grey(
    data: bytes, max_pixels: int = MAX_PIXELS, *, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Decode (PNG) bytes to float32 H×W in [0, 1]; ``size`` (w, h) resizes it in 8 bit."""
    img = open_image(data, max_pixels=max_pixels).convert("L")
    if size is not None and img.size != tuple(size):
        img = img.resize(tuple(size), Image.Resampling.BOX, reducing_gap=2.0)
    return np.asarray(img, dtype=np.float32) / 255.0
