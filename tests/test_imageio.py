"""Decoding with a working-size bound: downscale while decoding, never a full float copy."""

import io

import numpy as np
import pytest
from PIL import Image

from liwi.imageio import (
    ImageDecodeError,
    decode_grey,
    decode_rgb,
    decode_rgb8_sized,
    decode_rgb_scaled,
    header_size,
    open_image,
    to_uint8,
)


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _two_tone(w: int, h: int) -> Image.Image:
    img = Image.new("RGB", (w, h), (200, 10, 10))
    img.paste((10, 200, 10), (0, 0, w // 4, h))  # left quarter green
    return img


def test_jpeg_is_decoded_at_a_reduced_scale():
    data = _encode(_two_tone(4000, 3000), "JPEG", quality=90)
    src = Image.open(io.BytesIO(data))
    src.draft(None, (1000, 750))
    assert src.size == (1000, 750)  # what open_image asks Pillow for: a 1/4-scale DCT decode
    img = open_image(data, work_pixels=500_000)
    assert img.size[0] * img.size[1] <= 500_000 and img.size[0] / img.size[1] == pytest.approx(
        4 / 3, abs=0.01
    )


def test_exif_rotation_applies_to_the_downscaled_image_and_the_source_size():
    img = _two_tone(4000, 2000)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    data = _encode(img, "JPEG", exif=exif.tobytes())
    full = decode_rgb(data)
    small, size = decode_rgb_scaled(data, work_pixels=200_000)
    assert size == (2000, 4000) == header_size(data)
    assert full.shape[:2] == (4000, 2000)
    assert small.shape[0] * small.shape[1] <= 200_000 and small.shape[0] > small.shape[1]
    np.testing.assert_allclose(small[0, 0], full[0, 0], atol=0.05)  # green on top after rotation
    np.testing.assert_allclose(small[-1, 0], full[-1, 0], atol=0.05)


@pytest.mark.parametrize(
    ("mode", "value", "fmt", "expected"),
    [
        ("P", 7, "PNG", None),
        ("I;16", 40000, "PNG", 40000 / 65535),
        ("1", 1, "PNG", 1.0),
        ("LA", (100, 255), "PNG", 100 / 255),
        ("CMYK", (0, 0, 0, 0), "TIFF", 1.0),
    ],
)
def test_every_mode_downscales_in_its_own_depth(mode, value, fmt, expected):
    data = _encode(Image.new(mode, (1500, 1000), value), fmt)
    small, size = decode_rgb_scaled(data, work_pixels=60_000)
    assert size == (1500, 1000) and small.dtype == np.float32
    assert small.shape[0] * small.shape[1] <= 60_000 and small.shape[2] == 3
    if expected is not None:
        np.testing.assert_allclose(small.mean(), expected, atol=2 / 255)
    assert np.abs(small - decode_rgb(data)[0, 0]).max() <= 2 / 255  # same colour as full size


def test_small_images_are_untouched_and_limits_still_apply():
    data = _encode(_two_tone(64, 48))
    np.testing.assert_array_equal(decode_rgb(data, work_pixels=10_000), decode_rgb(data))
    with pytest.raises(ImageDecodeError, match="exceeds the limit"):
        header_size(data, max_pixels=1000)
    with pytest.raises(ImageDecodeError, match="exceeds the limit"):
        decode_rgb_scaled(data, max_pixels=1000)


def test_grey_mask_is_resized_in_8_bit():
    mask = Image.new("L", (400, 300), 0)
    mask.paste(255, (200, 0, 400, 300))
    out = decode_grey(_encode(mask), size=(40, 30))
    assert out.shape == (30, 40) and out[:, :20].max() == 0 and out[:, 20:].min() == 1


@pytest.mark.parametrize(
    "mode", ["RGB", "L", "RGBA", "LA", "P", "I;16", "CMYK", "1"], ids=lambda m: m
)
def test_uint8_decode_equals_the_float_decode_in_every_mode(mode):
    rng = np.random.default_rng(1)
    base = Image.fromarray(rng.integers(0, 256, (30, 40, 4), dtype=np.uint8), "RGBA")
    img = base.convert(mode) if mode != "I;16" else Image.new("I;16", (40, 30), 3000)
    data = _encode(img, "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG"))
    rgb8, size = decode_rgb8_sized(data)
    assert rgb8.dtype == np.uint8 and size == (40, 30)
    np.testing.assert_array_equal(rgb8, to_uint8(decode_rgb(data)))


def test_one_decode_gives_the_rotated_source_size():
    img = _two_tone(60, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: the source is 20 wide, 60 tall
    data = _encode(img, "PNG", exif=exif)
    rgb8, size = decode_rgb8_sized(data, work_pixels=300)
    assert size == (20, 60) == header_size(data) and rgb8.shape[0] > rgb8.shape[1]
    assert header_size(data, oriented=False) == (60, 20)
