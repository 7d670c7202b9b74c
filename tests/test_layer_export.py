"""ZIP and PSD export of layer stacks, read back with independent readers."""

import io
import json
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liwi.imageio import decode_rgb, decode_rgba
from liwi.layer_export import psd_composite, to_psd, to_zip
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
    # recomposite from the PNGs alone using only the manifest's blend modes
    out = decode_rgb(zf.read("00_background.png"))
    for entry in manifest["layers"][1:]:
        rgba = decode_rgba(zf.read(entry["file"]))
        a = rgba[..., 3:4]
        if entry["blend"] == "multiply":
            out = out * (1 - a + a * rgba[..., :3])
        else:
            out = a * rgba[..., :3] + (1 - a) * out
    assert np.abs(out - stack.composite()).mean() < 2 / 255
    assert {"background.png", "foreground.png", "shadow.png", "recomposed.png"} <= set(
        zf.namelist()
    )
