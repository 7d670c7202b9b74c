"""ZIP and PSD export of layer stacks, read back with independent readers."""

import io
import json
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liwi.imageio import to_uint8
from liwi.layer_export import psd_composite, to_psd, to_zip
from liwi.layer_pack import pack, unpack
from liwi.layers import LayerStack


def random_stack(seed: int, n_objects: int = 2, h: int = 24, w: int = 32) -> LayerStack:
    rng = np.random.default_rng(seed)
    bg = rng.random((h, w, 3), dtype=np.float32)
    colors, alphas, shadows = [], [], []
    for _ in range(n_objects):
        colors.append(rng.random((h, w, 3), dtype=np.float32))
        a = np.zeros((h, w), np.float32)
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        a[y0 : y0 + h // 2, x0 : x0 + w // 2] = rng.uniform(0.3, 1.0)
        alphas.append(a)
        s = np.ones((h, w), np.float32)
        s[min(y0 + h // 2, h - 2) :, x0 : x0 + w // 2] = rng.uniform(0.3, 0.9)
        shadows.append(s)
    return LayerStack.from_arrays(bg, colors, alphas, shadows)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 3))
def test_psd_composites_like_our_math(seed, n):
    stack = random_stack(seed, n)
    ours = stack.composite()
    theirs = psd_composite(to_psd(stack))
    assert theirs.shape == ours.shape
    # psd-tools composites 8-bit layers; allow quantisation error
    assert np.abs(theirs - ours).mean() <= 2 / 255


def test_psd_uses_multiply_for_shadows():
    from psd_tools import PSDImage
    from psd_tools.constants import BlendMode

    psd = PSDImage.open(io.BytesIO(to_psd(random_stack(1, 2))))
    modes = {layer.name: layer.blend_mode for layer in psd}
    assert modes["shadow_1"] == BlendMode.MULTIPLY
    assert modes["object_1"] == BlendMode.NORMAL
    assert [layer.name for layer in psd] == [
        "background",
        "shadow_1",
        "object_1",
        "shadow_2",
        "object_2",
    ]


def paste(zf: zipfile.ZipFile, entry: dict, width: int, height: int) -> np.ndarray:
    """A cropped layer file back on the full canvas as RGBA, read with PIL and numpy only."""
    from PIL import Image

    img = Image.open(io.BytesIO(zf.read(entry["file"])))
    assert img.mode == entry["mode"] and img.size == (entry["width"], entry["height"])
    px = np.asarray(img, dtype=np.float32) / 255.0
    if entry["mode"] == "L":  # grey attenuation S: a black multiply layer of alpha 1 − S
        px = np.dstack([np.zeros(px.shape + (3,), np.float32), 1.0 - px])
    elif entry["mode"] == "RGB":
        px = np.dstack([px, np.ones(px.shape, np.float32)[..., 0]])
    out = np.zeros((height, width, 4), np.float32)
    x, y = entry["x"], entry["y"]
    out[y : y + px.shape[0], x : x + px.shape[1]] = px
    return out


def composite_files(zf: zipfile.ZipFile) -> np.ndarray:
    """Recomposite a layers ZIP from its PNGs and manifest alone (offsets, modes, blends)."""
    manifest = json.loads(zf.read("layers.json"))
    w, h = manifest["width"], manifest["height"]
    out = None
    for entry in manifest["layers"]:
        rgba = paste(zf, entry, w, h)
        a = rgba[..., 3:4]
        if entry["kind"] == "background":
            out = rgba[..., :3]
        elif entry["blend"] == "multiply":
            out = out * (1 - a + a * rgba[..., :3])
        else:
            out = a * rgba[..., :3] + (1 - a) * out
    return out


def full_size_8bit_composite(stack: LayerStack) -> np.ndarray:
    """What the uncropped 8-bit layers (the old layout) composite to."""
    out = None
    for layer in stack.layers():
        px = to_uint8(layer.rgba).astype(np.float32) / 255.0
        a = px[..., 3:4]
        if layer.kind == "background":
            out = px[..., :3]
        elif layer.blend == "multiply":
            out = out * (1 - a + a * px[..., :3])
        else:
            out = a * px[..., :3] + (1 - a) * out
    return out


def test_zip_round_trip_recomposes():
    stack = random_stack(3, 2)
    zf = zipfile.ZipFile(io.BytesIO(to_zip(stack)))
    manifest = json.loads(zf.read("layers.json"))
    assert [entry["file"] for entry in manifest["layers"]] == [
        "00_background.png",
        "01_shadow_1.png",
        "02_object_1.png",
        "03_shadow_2.png",
        "04_object_2.png",
    ]
    assert manifest["layout_version"] == 2
    assert np.abs(composite_files(zf) - stack.composite()).mean() < 2 / 255
    assert {"background.png", "foreground.png", "shadow.png", "recomposed.png"} <= set(
        zf.namelist()
    )
    bare = zipfile.ZipFile(io.BytesIO(to_zip(stack, summaries=())))
    assert sorted(bare.namelist()) == sorted(
        [e["file"] for e in manifest["layers"]] + ["layers.json"]
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 3), st.booleans())
def test_cropped_layers_recomposite_like_full_size_ones(seed, n, coloured):
    stack = random_stack(seed, n)
    if coloured:  # a coloured shadow stays RGBA
        obj = stack.objects[0]
        obj.shadow[..., 0] = np.where(obj.shadow[..., 3] > 0, 0.6, 0.0)
    zf = zipfile.ZipFile(io.BytesIO(to_zip(stack, summaries=())))
    ours = composite_files(zf)
    assert np.abs(ours - full_size_8bit_composite(stack)).max() <= 1 / 255 + 1e-6
    modes = {e["name"]: e["mode"] for e in json.loads(zf.read("layers.json"))["layers"]}
    assert modes["shadow_1"] == ("RGBA" if coloured else "L") and modes["object_1"] == "RGBA"


def test_layers_are_cropped_to_their_boxes():
    stack = random_stack(5, 2, h=60, w=80)
    packed = pack(stack)
    by_name = {layer.name: layer for layer in packed.layers}
    assert by_name["background"].pixels.shape == (60, 80, 3)
    for i, obj in enumerate(stack.objects):
        layer = by_name[f"object_{i + 1}"]
        x0, y0, x1, y1 = obj.bbox
        assert (layer.x, layer.y, layer.width, layer.height) == (x0, y0, x1 - x0, y1 - y0)
        shadow = by_name[f"shadow_{i + 1}"]
        assert shadow.mode == "L" and shadow.pixels.size < 60 * 80 / 2
    back = unpack(packed)
    for a, b in zip(back.layers(), stack.layers(), strict=True):  # equal where visible
        a8, b8 = to_uint8(a.rgba).astype(int), to_uint8(b.rgba).astype(int)
        visible = b8[..., 3] > 0
        assert np.abs(a8 - b8)[visible].max() <= 1 and not a8[~visible, 3].any()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 3), st.floats(0.0, 0.004))
def test_packing_equals_cropping_the_full_size_8bit_layers(seed, n, faint):
    """pack quantises only inside a float box; the result is what cropping the full-size
    8-bit layer to its visible pixels gives, down to alphas that round to 0 or 1."""
    stack = random_stack(seed, n, h=40, w=56)
    obj = stack.objects[0]
    obj.rgba[..., 3] = np.where(obj.rgba[..., 3] > 0, obj.rgba[..., 3], faint)  # edge values
    for layer, packed in zip(stack.layers(), pack(stack).layers, strict=True):
        full = to_uint8(layer.rgba)
        if layer.kind == "background":
            np.testing.assert_array_equal(packed.pixels, full[..., :3])
            continue
        if packed.mode == "L":
            a, rgb = layer.rgba[..., 3:4], layer.rgba[..., :3]
            full = to_uint8(1.0 - a + a * rgb)[..., 0]
            visible = full < 255
        else:
            visible = full[..., 3] > 0
        if not visible.any():
            assert packed.pixels.size in (1, 4)
            continue
        rows, cols = np.flatnonzero(visible.any(1)), np.flatnonzero(visible.any(0))
        assert (packed.x, packed.y) == (cols[0], rows[0])
        np.testing.assert_array_equal(
            packed.pixels, full[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        )


def test_an_empty_object_is_one_transparent_pixel():
    stack = random_stack(2, 1)
    stack.objects[0].rgba[..., 3] = 0.0
    layer = next(x for x in pack(stack).layers if x.kind == "object")
    assert layer.pixels.shape == (1, 1, 4) and not layer.pixels.any()
    assert unpack(pack(stack)).objects[0].alpha.max() == 0


def test_psd_layers_sit_at_their_offsets():
    from psd_tools import PSDImage

    stack = random_stack(7, 2, h=60, w=80)
    psd = PSDImage.open(io.BytesIO(to_psd(stack)))
    packed = {layer.name: layer for layer in pack(stack).layers}
    for layer in psd:
        p = packed[layer.name]
        assert (layer.left, layer.top, layer.width, layer.height) == (p.x, p.y, p.width, p.height)
