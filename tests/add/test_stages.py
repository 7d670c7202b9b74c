"""Stages: bad input becomes error rows with clear reasons; batches keep their shape."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from liwi.add.base import (
    ERROR,
    PENDING,
    SKIPPED,
    Stage,
    batch_to_rows,
    rows_to_batch,
)
from liwi.add.stages import ReadDecode, decode_for_layers
from liwi.imageio import decode_rgb
from liwi.sample_photos import bad_input_files, procedural_photo
from liwi.schema import sample_id_for
from liwi.testing.chat_server import ChatServer, assistant_reply


@pytest.fixture(scope="module")
def bad_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_lake")
    files = bad_input_files()
    for name, (data, _) in files.items():
        (root / name).write_bytes(data)
    return root, files


def decode_all(root, paths, **kwargs):
    stage = ReadDecode(str(root), **kwargs)
    out = stage(rows_to_batch([{"path": str(p)} for p in paths]))
    return {r["path"].rsplit("/", 1)[-1]: r for r in batch_to_rows(out)}


def test_every_bad_input_is_an_error_row_or_decodes(bad_lake):
    root, files = bad_lake
    rows = decode_all(root, sorted(root.iterdir()))
    assert set(rows) == set(files)
    for name, (data, expect) in files.items():
        row = rows[name]
        reasons = json.loads(row["reasons"])
        if expect == "error":
            assert row["status"] == ERROR, name
            assert len(reasons) == 1 and reasons[0].startswith("read_decode: "), reasons
            assert row["image"].shape == (0, 0, 3) and row["image_bytes"] == b""
        else:
            assert row["status"] == PENDING and reasons == [], (name, reasons)
            assert row["image"].dtype == np.uint8 and row["image"].ndim == 3
            assert (row["height"], row["width"]) == row["image"].shape[:2]
            # the stored image decodes to exactly the pixels the layers are made from
            np.testing.assert_array_equal(
                (decode_rgb(row["image_bytes"]) * 255 + 0.5).astype(np.uint8), row["image"]
            )
        assert row["sample_id"] == sample_id_for(data)
        assert row["t_read_decode"] >= 0


def test_reasons_say_what_is_wrong(bad_lake):
    root, _ = bad_lake
    rows = decode_all(root, sorted(root.iterdir()))
    reason = {k: json.loads(r["reasons"])[0] for k, r in rows.items() if r["status"] == ERROR}
    assert "empty file (0 bytes)" in reason["empty.jpg"]
    assert "truncated" in reason["truncated.jpg"] and "JPEG" in reason["truncated.jpg"]
    assert "truncated" in reason["truncated.png"] and "PNG" in reason["truncated.png"]
    assert "not a recognised image format" in reason["not_an_image.jpg"]
    assert "decompression bomb" in reason["bomb.png"]


def test_image_modes_are_converted_correctly(bad_lake):
    root, files = bad_lake
    rows = decode_all(root, sorted(root.iterdir()))
    ref = Image.open(io.BytesIO(files["rgba.png"][0])).convert("RGB")
    ref = np.asarray(ref, np.int16)
    h, w = ref.shape[:2]
    assert w != h  # the fixture is landscape, so a rotation shows in the shape
    rot = rows["exif_rotated.jpg"]["image"]
    assert rot.shape == (w, h, 3)  # EXIF orientation 6 applied: portrait now
    # orientation 6 = the stored pixels are displayed rotated 90° clockwise
    right = np.abs(rot - np.rot90(ref, k=-1)).mean()
    wrong = np.abs(rot - np.rot90(ref, k=1)).mean()
    assert right < 4 and wrong > 3 * right, (right, wrong)
    for name in ("cmyk.jpg", "palette.png", "animated.gif"):
        img = rows[name]["image"].astype(np.int16)
        assert img.shape == ref.shape and np.abs(img - ref).mean() < 12, name
    for name in ("grey.png", "grey16.png"):
        img = rows[name]["image"].astype(np.int16)
        assert np.ptp(img, axis=2).max() == 0  # grey stays grey
        grey_ref = np.asarray(Image.fromarray(ref.astype(np.uint8)).convert("L"), np.int16)
        assert np.abs(img[..., 0] - grey_ref).mean() < 3, name
    rgba = rows["rgba.png"]
    assert rgba["image_bytes"] != files["rgba.png"][0]  # re-encoded: alpha was flattened
    assert rows["exif_rotated.jpg"]["image_bytes"] != files["exif_rotated.jpg"][0]


def test_large_photos_are_downscaled_and_tally_rows_pass_untouched(tmp_path):
    from liwi.add.inputs import tally

    big = procedural_photo(0, 300)
    (tmp_path / "big.jpg").write_bytes(big)
    stage = ReadDecode(str(tmp_path), max_side=128)
    out = batch_to_rows(stage(rows_to_batch([{**tally(0), "path": str(tmp_path / "big.jpg"),
                                              "status": PENDING, "n": 1}, tally(7)])))  # fmt: skip
    assert out[0]["image"].shape == (128, 128, 3)
    assert out[0]["image_bytes"] != big  # downscaled → re-encoded PNG
    assert decode_rgb(out[0]["image_bytes"]).shape == (128, 128, 3)
    assert out[0]["sample_id"] == sample_id_for(big)
    assert (out[1]["status"], out[1]["n"], out[1]["sample_id"]) == (SKIPPED, 7, "")


def test_unreadable_path_is_an_error_row(tmp_path):
    rows = decode_all(tmp_path, [tmp_path / "vanished.jpg"])
    row = rows["vanished.jpg"]
    assert row["status"] == ERROR and "cannot read" in json.loads(row["reasons"])[0]
    assert row["sample_id"].startswith("path-")


def test_pixel_limit_is_configurable():
    data = procedural_photo(0, 64)
    with pytest.raises(ValueError, match="exceeds the limit"):
        decode_for_layers(data, max_side=1024, max_pixels=1000)


class Flaky(Stage):
    """A stage that fails on one particular row (exercises the base class)."""

    name = "flaky"

    def process_row(self, row):
        if row["x"] == 2:
            raise RuntimeError("row two is cursed\nsecond line")
        row["y"] = row["x"] * 10
        return row

    def finish_row(self, row):
        row.setdefault("y", -1)
        return row


def test_one_bad_row_never_stops_a_batch_and_columns_stay_uniform():
    images = [np.zeros((4, 4, 3), np.uint8) for _ in range(4)]  # same shapes: never stacked
    batch = rows_to_batch(
        [{"x": i, "status": PENDING, "reasons": "[]", "img": images[i]} for i in range(4)]
    )
    assert batch["img"].shape == (4,) and batch["img"].dtype == object
    out = batch_to_rows(Flaky()(batch))
    assert [r["y"] for r in out] == [0, 10, -1, 30]
    assert [r["status"] for r in out] == [PENDING, PENDING, ERROR, PENDING]
    assert json.loads(out[2]["reasons"]) == ["flaky: row two is cursed"]
    assert all(r["t_flaky"] >= 0 for r in out)


@pytest.mark.parametrize(
    "answer,status",
    [
        (
            '{"verdict": "fail", "confidence": 0.9, "reason": "smear where the object was"}',
            "rejected",
        ),
        ('{"verdict": "pass", "confidence": 0.8, "reason": "clean"}', "ok"),
    ],
)
def test_curate_asks_the_vlm_verify_tool_when_enabled(answer, status):
    import pickle

    from liwi.add.stages import Curate, PackedStack
    from liwi.imageio import to_uint8
    from liwi.sample_photos import procedural_scene

    stack = procedural_scene(0, 96, 1)
    row = {
        "sample_id": "s",
        "status": PENDING,
        "reasons": "[]",
        "image": to_uint8(stack.composite()),
        "layers": pickle.dumps(PackedStack.pack(stack)),
    }
    with ChatServer(lambda body: (200, assistant_reply(answer))) as server:
        stage = Curate(
            curator={"use_vlm": True},
            verify={"backend": "openai", "endpoint": server.url, "api_key_env": None},
        )
        out = batch_to_rows(stage(rows_to_batch([row])))[0]
    assert out["status"] == status
    scores = json.loads(out["scores"])
    assert scores["vlm"] == pytest.approx(0.1 if status == "rejected" else 0.8)
    if status == "rejected":
        assert json.loads(out["reasons"]) == ["VLM verdict: background: smear where the object was"]
    content = server.requests[0].body["messages"][-1]["content"]
    assert any(part.get("type") == "image_url" for part in content)  # the background was sent
