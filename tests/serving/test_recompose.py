"""POST /v1/recompose over real HTTP: the API's own ZIP + ops → the PNG `liwi edit` makes."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import requests

from serving.serving_support import decode_png, photo, png_bytes

pytestmark = pytest.mark.integration


def recompose(server, auth, layers: bytes, ops) -> requests.Response:
    text = ops if isinstance(ops, str) else json.dumps(ops)
    return requests.post(
        server.url + "/v1/recompose",
        files={"layers": ("layers.zip", layers, "application/zip")},
        data={"ops": text},
        headers=auth,
        timeout=60,
    )


@pytest.fixture(scope="module")
def layers_zip(server) -> bytes:
    from serving.serving_support import API_KEY

    resp = requests.post(
        server.url + "/v1/decompose",
        files={"image": ("p.png", png_bytes(photo(160, 120, seed=4)), "image/png")},
        data={"format": "zip", "max_layers": "3"},
        headers={"X-API-Key": API_KEY},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    return resp.content


def test_recompose_equals_liwi_edit(server, auth, layers_zip, tmp_path):
    from liwi.cli import main

    n = len(json.loads(zipfile.ZipFile(io.BytesIO(layers_zip)).read("layers.json"))["objects"])
    assert n >= 1
    ops = {
        "version": 1,
        "ops": [
            {"op": "move", "object": n - 1, "dx": 12, "dy": -4},
            {"op": "shadow", "object": n - 1, "strength": 0.5},
            {"op": "recolor", "object": 0, "hue": 40},
        ],
    }
    resp = recompose(server, auth, layers_zip, ops)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    folder = tmp_path / "layers"
    zipfile.ZipFile(io.BytesIO(layers_zip)).extractall(folder)
    (tmp_path / "ops.json").write_text(json.dumps(ops))
    out = tmp_path / "edited.png"
    assert main(["edit", str(folder), "--ops", str(tmp_path / "ops.json"), "--out", str(out)]) == 0
    assert np.abs(decode_png(resp.content) - decode_png(out.read_bytes())).max() <= 1 / 255


def test_empty_ops_give_the_recomposed_image(server, auth, layers_zip):
    from liwi.edits import read_layers_zip

    resp = recompose(server, auth, layers_zip, {"version": 1, "ops": []})
    assert resp.status_code == 200, resp.text
    expected = read_layers_zip(layers_zip).composite()
    assert np.abs(decode_png(resp.content)[..., :3] - expected).max() <= 1 / 255


@pytest.mark.parametrize(
    ("ops", "code", "words"),
    [
        ({"version": 1, "ops": [{"op": "remove", "object": 9}]}, "bad_ops", "no object 9"),
        (
            '{"version": 1, "ops": [{"op": "move", "object": 0, "dx": NaN, "dy": 0}]}',
            "bad_ops",
            "finite",
        ),
        ({"version": 2, "ops": []}, "bad_ops", "version"),
        (
            {"version": 1, "ops": [{"op": "insert", "source": "/etc", "object": 0}]},
            "bad_ops",
            "liwi edit",
        ),
        ("{not json", "bad_ops", "not valid json"),
        ("", "bad_ops", "needs a field 'ops'"),
    ],
)
def test_bad_ops_are_422_one_line(server, auth, layers_zip, ops, code, words):
    resp = recompose(server, auth, layers_zip, ops)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["code"] == code and words.lower() in body["detail"].lower(), body
    assert "\n" not in body["detail"]


def test_bad_layers_are_422(server, auth):
    resp = recompose(server, auth, b"not a zip", {"version": 1, "ops": []})
    assert resp.status_code == 422 and resp.json()["code"] == "bad_layers", resp.text
    resp = requests.post(
        server.url + "/v1/recompose", data={"ops": "{}"}, headers=auth, files={"x": ("x", b"1")}
    )
    assert resp.status_code == 422 and resp.json()["code"] == "bad_layers", resp.text


def test_recompose_needs_the_key(server, layers_zip):
    assert recompose(server, {}, layers_zip, {"version": 1, "ops": []}).status_code == 401
