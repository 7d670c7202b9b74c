"""Edit operations: properties of the layer math, the ops format, and `liwi edit`."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liwi.edits import EditError, EditList, apply_edits, move, read_layers_folder, remove
from liwi.layer_export import write_folder
from liwi.layers import LayerStack, ObjectLayer


def make_stack(seed: int = 0, h: int = 48, w: int = 64) -> LayerStack:
    rng = np.random.default_rng(seed)
    objects = []
    for k in range(2):
        alpha = np.zeros((h, w), np.float32)
        y, x = 10 + 8 * k, 12 + 20 * k
        alpha[y : y + 14, x : x + 16] = 1.0
        alpha[y - 1, x : x + 16] = 0.5  # a soft edge
        shadow = np.ones((h, w, 3), np.float32)
        shadow[y + 14 : y + 18, x : x + 18] = 0.6
        color = rng.random((h, w, 3)).astype(np.float32)
        objects.append(ObjectLayer.from_maps(color, alpha, shadow, label=f"o{k}"))
    return LayerStack(background=rng.random((h, w, 3)).astype(np.float32), objects=objects)


def test_empty_edit_list_reproduces_the_composite_exactly():
    stack = make_stack()
    out = apply_edits(stack, EditList.parse('{"version": 1, "ops": []}'))
    np.testing.assert_array_equal(out.composite(), stack.composite())


@settings(max_examples=25, deadline=None)
@given(dx=st.integers(-8, 8), dy=st.integers(-8, 8), i=st.integers(0, 1))
def test_move_then_move_back_is_the_identity_inside_the_canvas(dx, dy, i):
    stack = make_stack()
    back = move(move(stack, i, dx, dy), i, -dx, -dy)
    # the objects sit ≥ 9 px from every border, so a shift of ≤ 8 px loses nothing; colour
    # under alpha 0 carries no information (layers are resampled premultiplied)
    for got, want in (
        (back.objects[i].rgba, stack.objects[i].rgba),
        (back.objects[i].shadow, stack.objects[i].shadow),
    ):
        np.testing.assert_allclose(got[..., 3], want[..., 3], atol=1e-6)
        seen = want[..., 3] > 0
        np.testing.assert_allclose(got[..., :3][seen], want[..., :3][seen], atol=1e-5)
    np.testing.assert_allclose(back.composite(), stack.composite(), atol=1e-5)


def test_removing_every_object_gives_the_background():
    stack = make_stack()
    out = remove(remove(stack, 1), 0)
    np.testing.assert_array_equal(out.composite(), stack.background)
    assert stack.objects and len(stack.objects) == 2  # the input is untouched


def test_shadow_follows_its_object_and_strength_scales_it():
    stack = make_stack()
    moved = move(stack, 0, 5, 3)
    a0 = stack.objects[0].shadow[..., 3]
    np.testing.assert_allclose(moved.objects[0].shadow[3:, 5:, 3], a0[:-3, :-5], atol=1e-6)
    ops = {"version": 1, "ops": [{"op": "shadow", "object": 0, "strength": 0.0}]}
    gone = apply_edits(stack, EditList.parse(ops))
    assert gone.objects[0].attenuation.min() == 1.0


def test_reorder_recolor_scale_and_insert(tmp_path):
    stack = make_stack()
    ops = EditList.parse(
        {
            "version": 1,
            "ops": [
                {"op": "reorder", "object": 0, "to": 1},
                {"op": "recolor", "object": 1, "hue": 0, "saturation": 1, "brightness": 0},
                {"op": "scale", "object": 0, "factor": 0.5},
            ],
        }
    )
    out = apply_edits(stack, ops)
    assert [o.label for o in out.objects] == ["o1", "o0"]
    assert out.objects[1].rgba[..., :3].max() == 0.0  # brightness 0: black object
    assert out.objects[0].area == pytest.approx(stack.objects[1].area / 4, rel=0.15)
    donor = write_folder(make_stack(seed=3), tmp_path / "donor")
    ins = {"version": 1, "ops": [{"op": "insert", "source": str(donor), "object": 1, "dx": 2}]}
    out = apply_edits(stack, EditList.parse(ins))
    assert len(out.objects) == 3 and out.objects[2].shadow[..., 3].max() > 0


@pytest.mark.parametrize(
    "ops, match",
    [
        ({"version": 1, "ops": [{"op": "move", "object": 5, "dx": 1, "dy": 1}]}, "no object 5"),
        (
            {"version": 1, "ops": [{"op": "move", "object": 0, "dx": 1e6, "dy": 0}]},
            "off the canvas",
        ),
        ('{"version": 1, "ops": [{"op": "move", "object": 0, "dx": NaN, "dy": 0}]}', "finite"),
        ({"version": 1, "ops": [{"op": "spin", "object": 0}]}, "does not match"),
        ({"version": 2, "ops": []}, "version"),
        ({"version": 1, "ops": [{"op": "remove", "object": 0, "extra": 1}]}, "extra"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_ops_are_one_line_errors(ops, match):
    with pytest.raises(EditError, match=match) as info:
        apply_edits(make_stack(), EditList.parse(ops if isinstance(ops, str) else json.dumps(ops)))
    assert "\n" not in str(info.value)


def test_folder_round_trip_and_cli(tmp_path):
    from liwi.cli import main
    from liwi.imageio import decode_rgb

    stack = make_stack()
    folder = write_folder(stack, tmp_path / "layers")
    back = read_layers_folder(folder)
    assert len(back.objects) == 2
    np.testing.assert_allclose(back.composite(), stack.composite(), atol=2 / 255)
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps({"version": 1, "ops": [{"op": "remove", "object": 1}]}))
    out = tmp_path / "edited.png"
    assert main(["edit", str(folder), "--ops", str(ops), "--out", str(out)]) == 0
    expected = remove(back, 1).composite()
    np.testing.assert_allclose(decode_rgb(out.read_bytes()), expected, atol=1 / 255 + 1e-6)
    ops.write_text('{"version": 1, "ops": [{"op": "remove", "object": 9}]}')
    assert main(["edit", str(folder), "--ops", str(ops), "--out", str(out)]) == 2


def test_zip_reader_matches_the_folder_reader(tmp_path):
    from liwi.edits import read_layers_zip
    from liwi.layer_export import to_zip

    stack = make_stack()
    folder = read_layers_folder(write_folder(stack, tmp_path / "layers"))
    zipped = read_layers_zip(to_zip(stack, summaries=()))
    assert [o.label for o in zipped.objects] == [o.label for o in folder.objects]
    np.testing.assert_array_equal(zipped.composite(), folder.composite())
    np.testing.assert_allclose(zipped.composite(), stack.composite(), atol=2 / 255)


def test_old_full_size_folders_still_read(tmp_path):
    """Folders written before layers were cropped: full-size RGBA PNGs, no x/y/mode."""
    from liwi.imageio import encode_png

    stack = make_stack()
    manifest = stack.manifest()
    for i, (layer, entry) in enumerate(zip(stack.layers(), manifest["layers"], strict=True)):
        entry["file"] = f"{i:02d}_{layer.name}.png"
        rgba = layer.rgba[..., :3] if layer.kind == "background" else layer.rgba
        (tmp_path / entry["file"]).write_bytes(encode_png(rgba))
    (tmp_path / "layers.json").write_text(json.dumps(manifest, default=str))
    back = read_layers_folder(tmp_path)
    np.testing.assert_allclose(back.composite(), stack.composite(), atol=2 / 255)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda files: files.pop("layers.json"), "no layers.json"),
        (lambda files: files.pop("02_object_1.png"), "is missing"),
        (lambda files: files.update({"layers.json": b"[1]"}), "not a layers manifest"),
        (lambda files: files.update({"02_object_1.png": b"not a png"}), "02_object_1.png"),
    ],
)
def test_bad_layer_zips_are_one_line_errors(mutate, words):
    import io
    import zipfile

    from liwi.edits import read_layers_zip
    from liwi.layer_export import export_files

    files = export_files(make_stack(), ())
    mutate(files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    with pytest.raises(EditError, match=words) as info:
        read_layers_zip(buf.getvalue())
    assert "\n" not in str(info.value)
    with pytest.raises(EditError, match="not a ZIP"):
        read_layers_zip(b"PK\x03\x04 nothing")
