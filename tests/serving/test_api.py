"""The HTTP API over real HTTP against a running Serve app: formats, limits, errors."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from serving.serving_support import (
    API_KEY,
    BODY_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_PIXELS,
    WORK_PIXELS,
    decode_png,
    photo,
    png_bytes,
    recompose,
)

pytestmark = pytest.mark.integration


def post_form(server, auth, image: bytes, **fields):
    files = {"image": ("photo.png", image, "image/png")}
    return requests.post(
        server.url + "/v1/decompose", files=files, data=fields, headers=auth, timeout=60
    )


def assert_error(resp, status: int, code: str | None = None, words: str | None = None):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"detail", "code"}, body
    if code:
        assert body["code"] == code, body
    if words:
        assert words.lower() in body["detail"].lower(), body


# -- health, models, docs, auth ------------------------------------------------------------


def test_health_and_readiness_need_no_key(server):
    assert requests.get(server.url + "/healthz", timeout=10).json() == {
        "status": "ok",
        "detail": None,
    }
    assert requests.get(server.url + "/readyz", timeout=10).json()["status"] == "ready"


def test_models_reports_the_loaded_checkpoint(server, auth):
    resp = requests.get(server.url + "/v1/models", headers=auth, timeout=10)
    assert resp.status_code == 200, resp.text
    (info,) = resp.json()["data"]
    assert info["uri"] == str(server.checkpoint)
    import hashlib

    digest = hashlib.sha256(server.checkpoint.read_bytes()).hexdigest()[:12]
    assert info["version"] == f"sha256:{digest}"
    assert info["config"]["resolution"] == 64  # the tiny preset
    assert info["batching"]["max_batch_size"] == 4


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"X-API-Key": "nope"}, {"Authorization": API_KEY}],
    ids=["none", "wrong-bearer", "wrong-x-api-key", "no-bearer-prefix"],
)
def test_api_key_is_checked(server, photo_png, headers):
    resp = post_form(server, headers, photo_png)
    assert_error(resp, 401, "unauthorized", "api key")
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert requests.get(server.url + "/v1/models", headers=headers, timeout=10).status_code == 401


def test_x_api_key_header_works(server, photo_png):
    resp = post_form(server, {"X-API-Key": API_KEY}, photo_png)
    assert resp.status_code == 200, resp.text


def test_docs_and_openapi(server):
    assert "swagger" in requests.get(server.url + "/docs", timeout=10).text.lower()
    spec = requests.get(server.url + "/openapi.json", timeout=10).json()
    assert {"/v1/decompose", "/v1/models", "/healthz", "/readyz"} <= set(spec["paths"])
    body = spec["paths"]["/v1/decompose"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert "DecomposeJSONRequest" in spec["components"]["schemas"]


def test_viewer_is_served_without_external_resources(server):
    html = requests.get(server.url + "/", timeout=10).text
    assert "<canvas" in html and "viewer.js" in html
    for asset in ("static/viewer.js", "static/viewer.css"):
        text = requests.get(f"{server.url}/{asset}", timeout=10).text
        assert "http://" not in text and "https://" not in text, asset


# -- decompositions ----------------------------------------------------------------------


def test_multipart_json_layers_composite_back(server, auth, photo_png):
    resp = post_form(server, auth, photo_png, max_layers="3")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    h, w = photo().shape[:2]
    assert (body["width"], body["height"]) == (w, h)
    assert 1 <= body["n_layers"] <= 3
    kinds = [layer["kind"] for layer in body["layers"]]
    assert kinds[0] == "background" and kinds.count("object") == body["n_layers"] - 1
    assert body["model"]["uri"] == str(server.checkpoint)
    assert body["manifest"]["n_layers"] == body["n_layers"]
    assert body["composite"] is None  # only on request
    timings = body["timings_ms"]
    assert set(timings) == {"decode", "model", "predict", "encode"}
    assert 0 < timings["predict"] <= timings["model"]
    assert resp.headers["Server-Timing"].startswith("decode;dur=")
    # Cropped layers, placed at their offsets and recomposed with our multiply/normal math,
    # give the composite the server makes on request.
    asked = post_form(server, auth, photo_png, max_layers="3", composite="true").json()
    composite = decode_png(base64.b64decode(asked["composite"]))
    assert np.abs(recompose(asked) - composite).max() <= 2 / 255
    objects = [layer for layer in asked["layers"] if layer["kind"] == "object"]
    assert objects and all(o["width"] * o["height"] < w * h for o in objects)  # cropped
    assert {layer["mode"] for layer in asked["layers"] if layer["kind"] == "background"} == {"RGB"}


def test_json_body_with_data_url_and_prompt(server, auth, photo_png):
    image = "data:image/png;base64," + base64.b64encode(photo_png).decode()
    mask = np.zeros((80, 96), np.float32)
    mask[20:60, 20:70] = 1.0
    body = {
        "image": image,
        "prompt": {
            "box": [20, 15, 70, 62],
            "points": [[43, 36]],
            "mask": base64.b64encode(png_bytes(mask)).decode(),
        },
        "max_layers": 2,
    }
    resp = requests.post(server.url + "/v1/decompose", json=body, headers=auth, timeout=60)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["n_layers"] <= 2
    assert out["manifest"]["meta"]["prompted"] is True


def test_large_mask_in_a_form_field(server, auth):
    """A base64 mask over 1 MB in the multipart `prompt` text field is accepted."""
    side = 1000  # 1 MP: the test app's pixel limit
    rng = np.random.default_rng(0)
    mask = rng.random((side, side)).astype(np.float32)  # soft noise: a PNG of about 1 MB
    prompt = json.dumps({"mask": base64.b64encode(png_bytes(mask)).decode()})
    assert 1024 * 1024 < len(prompt) < MAX_BODY_BYTES - 100_000
    image = png_bytes(np.full((side, side, 3), 0.5, np.float32))
    resp = post_form(server, auth, image, prompt=prompt, max_layers="2")
    assert resp.status_code == 200, resp.text
    assert resp.json()["manifest"]["meta"]["prompted"] is True


def test_zip_format(server, auth, photo_png):
    resp = post_form(server, auth, photo_png, format="zip")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    assert "layers.zip" in resp.headers["content-disposition"]
    assert "predict;dur=" in resp.headers["Server-Timing"]
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("layers.json"))
    assert names == {e["file"] for e in manifest["layers"]} | {"layers.json"}  # no extras
    assert manifest["width"] == 96 and manifest["layout_version"] == 2
    resp = post_form(server, auth, photo_png, format="zip", composite="1")
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        assert "recomposed.png" in zf.namelist()


def test_zip_answer_reads_back_as_the_json_layers(server, auth, photo_png):
    from liwi.edits import read_layers_zip

    body = post_form(server, auth, photo_png, composite="true").json()
    stack = read_layers_zip(post_form(server, auth, photo_png, format="zip").content)
    expected = decode_png(base64.b64decode(body["composite"]))
    assert np.abs(stack.composite() - expected).max() <= 1 / 255 + 1e-6


def test_prior_method_and_its_model_ref(server, auth, photo_png):
    resp = post_form(server, auth, photo_png, method="prior", composite="true")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"]["method"] == "prior" and body["model"]["prior"] == "u2netp-liwi"
    assert body["manifest"]["meta"]["model"] == "prior:u2netp-liwi"
    assert all(layer["kind"] != "shadow" for layer in body["layers"])  # the prior casts none
    assert (
        np.abs(recompose(body) - decode_png(base64.b64decode(body["composite"]))).max() <= 2 / 255
    )
    model = post_form(server, auth, photo_png).json()["model"]
    assert model["method"] == "model" and model["uri"] == str(server.checkpoint)
    info = requests.get(server.url + "/v1/models", headers=auth, timeout=10).json()["data"][0]
    assert info["prior"] == "u2netp-liwi" and info["methods"] == ["model", "prior"]


def test_add_method_is_422_naming_the_cli(server, auth, photo_png):
    resp = post_form(server, auth, photo_png, method="add")
    assert_error(resp, 422, "bad_method", "liwi predict --method add")
    image = base64.b64encode(photo_png).decode()
    resp = requests.post(
        server.url + "/v1/decompose",
        json={"image": image, "method": "nope"},
        headers=auth,
        timeout=30,
    )
    assert_error(resp, 422, "bad_method", "expected model or prior")


def test_psd_format_composites_like_json(server, auth, photo_png):
    from liwi.layer_export import psd_composite

    resp = post_form(server, auth, photo_png, format="psd")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/vnd.adobe.photoshop"
    body = post_form(server, auth, photo_png, composite="true").json()
    expected = decode_png(base64.b64decode(body["composite"]))
    assert np.abs(psd_composite(resp.content) - expected).mean() <= 2 / 255


def test_concurrent_requests_all_succeed(server, auth, photo_png):
    """Requests that arrive together are batched by the model deployment and all answered."""
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: post_form(server, auth, photo_png).status_code, range(6)))
    assert codes == [200] * 6
    info = requests.get(server.url + "/v1/models", headers=auth, timeout=10).json()["data"][0]
    assert info["batching"]["recent_mean_batch_size"] >= 1


# -- protection: 413, 415, 422 --------------------------------------------------------------


def test_body_over_the_limit_is_413(server, auth):
    resp = post_form(server, auth, b"\0" * (MAX_BODY_BYTES + 1))
    assert_error(resp, 413, "body_too_large", "exceeds the limit")


def test_streamed_body_over_the_limit_is_413(server, auth):
    """No Content-Length (chunked): the limit is enforced while reading."""

    def chunks():
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    headers = {**auth, "Content-Type": "application/json"}
    resp = requests.post(server.url + "/v1/decompose", data=chunks(), headers=headers, timeout=60)
    assert_error(resp, 413, "body_too_large")


def test_image_over_the_pixel_limit_is_413(server, auth):
    big = np.zeros((1001, 1000, 3), np.uint8)  # compresses to a few KB
    resp = post_form(server, auth, png_bytes(big))
    assert_error(resp, 413, "image_too_large", f"limit of {MAX_PIXELS}")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/octet-stream", "image/png", "application/x-www-form-urlencoded"],
)
def test_wrong_content_type_is_415(server, auth, photo_png, content_type):
    resp = requests.post(
        server.url + "/v1/decompose",
        data=photo_png,
        headers={**auth, "Content-Type": content_type},
        timeout=30,
    )
    assert_error(resp, 415, "unsupported_media_type", content_type)


def test_missing_content_type_is_415(server, auth):
    req = requests.Request("POST", server.url + "/v1/decompose", headers=auth, data=b"").prepare()
    req.headers.pop("Content-Type", None)
    resp = requests.Session().send(req, timeout=30)
    assert_error(resp, 415, "unsupported_media_type")


PNG = png_bytes(photo())


@pytest.mark.parametrize(
    ("image", "fields", "code", "words"),
    [
        (b"not an image at all", {}, "undecodable_image", "not a recognised image"),
        (PNG[: len(PNG) // 2], {}, "undecodable_image", "truncated"),
        (b"", {}, "empty_image", "empty"),
        (png_bytes(np.zeros((4, 4, 3))), {}, "image_too_small", "too small"),
        (png_bytes(np.zeros((10, 400, 3))), {}, "bad_aspect_ratio", "elongated"),
        (PNG, {"max_layers": "0"}, "bad_max_layers", "between 1 and 6"),
        (PNG, {"max_layers": "99"}, "bad_max_layers", "between 1 and 6"),
        (PNG, {"max_layers": "three"}, "bad_max_layers", "integer"),
        (PNG, {"format": "gif"}, "bad_format", "json, zip or psd"),
        (PNG, {"prompt": "{not json"}, "bad_prompt", "not valid json"),
        (PNG, {"prompt": '{"box": [1, 2, 3]}'}, "bad_prompt", "prompt.box"),
        (PNG, {"prompt": '{"box": [50, 10, 20, 40]}'}, "bad_prompt", "x1 > x0"),
        (PNG, {"prompt": '{"box": [0, 0, 500, 40]}'}, "bad_prompt", "outside"),
        (PNG, {"prompt": '{"points": [[1, 2, 3]]}'}, "bad_prompt", "points[0]"),
        (PNG, {"prompt": '{"points": [[-1, 2]]}'}, "bad_prompt", "outside"),
        (PNG, {"prompt": '{"mask": "%%%"}'}, "bad_base64", "prompt.mask"),
        (PNG, {"prompt": '{"colour": "red"}'}, "bad_prompt", "colour"),
    ],
    ids=[
        "junk", "truncated", "empty", "tiny", "elongated", "layers-0", "layers-99",
        "layers-text", "format", "prompt-json", "box-3", "box-inverted", "box-outside",
        "point-3", "point-outside", "mask-b64", "prompt-unknown-key",
    ],
)  # fmt: skip
def test_bad_multipart_input_is_422(server, auth, image, fields, code, words):
    resp = post_form(server, auth, image, **fields)
    assert_error(resp, 422, code, words)


def test_mask_of_the_wrong_size_is_422(server, auth, photo_png):
    mask = base64.b64encode(png_bytes(np.ones((10, 10), np.float32))).decode()
    resp = post_form(server, auth, photo_png, prompt=json.dumps({"mask": mask}))
    assert_error(resp, 422, "bad_prompt", "the image 96×80")


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"{bad json", "bad_json", "not valid json"),
        (b"[1, 2]", "bad_request", "valid dictionary"),
        (b'{"max_layers": 2}', "bad_request", "image"),
        (b'{"image": "!!!"}', "bad_base64", "not valid base64"),
        (b'{"image": "aGVsbG8="}', "undecodable_image", "not a recognised"),
        (b'{"image": 5}', "bad_request", "image"),
        (b'{"image": "aGVsbG8=", "extra": 1}', "bad_request", "extra"),
        (b"\xff\xfe\x00", "bad_json", "not valid json"),
    ],
    ids=["syntax", "array", "no-image", "b64", "not-image", "image-int", "extra", "binary"],
)
def test_bad_json_input_is_422(server, auth, body, code, words):
    headers = {**auth, "Content-Type": "application/json"}
    resp = requests.post(server.url + "/v1/decompose", data=body, headers=headers, timeout=30)
    assert_error(resp, 422, code, words)


def test_form_without_image_field_is_422(server, auth):
    resp = requests.post(
        server.url + "/v1/decompose",
        files={"picture": ("a.png", PNG, "image/png")},
        headers=auth,
        timeout=30,
    )
    assert_error(resp, 422, "missing_image", "'image'")


def test_malformed_multipart_is_422(server, auth):
    headers = {**auth, "Content-Type": "multipart/form-data; boundary=XYZ"}
    resp = requests.post(
        server.url + "/v1/decompose", data=b"--XYZ\r\ngarbage", headers=headers, timeout=30
    )
    assert resp.status_code == 422 or resp.status_code == 400, resp.text
    assert resp.json()["code"] in {"bad_form", "missing_image"}


# -- protection: 503 queue full, 504 timeout ------------------------------------------------


def test_full_queue_answers_503_with_retry_after(server):
    """max_ongoing_requests=1 and max_queued_requests=1: a burst overflows the queue."""
    big = png_bytes(photo(480, 400, seed=1))

    def call(_):
        return requests.post(
            server.app("queue") + "/v1/decompose",
            files={"image": ("p.png", big, "image/png")},
            data={"max_layers": "4"},
            timeout=120,
        )

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(call, range(10)))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {200, 503}, codes
    assert 200 in codes and 503 in codes, codes
    rejected = next(r for r in responses if r.status_code == 503)
    assert rejected.headers["Retry-After"] == "3"
    assert rejected.json()["code"] == "overloaded"


def test_request_past_its_budget_is_504(server, photo_png):
    resp = requests.post(
        server.app("timeout") + "/v1/decompose",
        files={"image": ("p.png", photo_png, "image/png")},
        timeout=60,
    )
    assert_error(resp, 504, "timeout", "did not answer")
    # The app stays healthy afterwards.
    assert requests.get(server.app("timeout") + "/readyz", timeout=10).status_code == 200


# -- issue 15: one auth rule, strict and shallow JSON, slow bodies, big photos, no leaks ----


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X-API-Key": "", "Authorization": f"Bearer {API_KEY}"}, 200),
        ({"X-API-Key": API_KEY, "Authorization": "Bearer "}, 200),
        ({"X-API-Key": API_KEY, "Authorization": "Basic dXNlcjpwdw=="}, 200),
        ({"X-API-Key": "nope", "Authorization": f"Bearer {API_KEY}"}, 401),
        ({"X-API-Key": API_KEY, "Authorization": "Bearer nope"}, 401),
        ({"X-API-Key": "", "Authorization": ""}, 401),
    ],
    ids=["empty-x-api-key", "empty-bearer", "basic-ignored", "wrong-x", "wrong-bearer", "empties"],
)
def test_one_auth_rule(server, headers, status):
    """Empty headers present nothing; every key presented must be the key."""
    resp = requests.get(server.url + "/v1/models", headers=headers, timeout=30)
    assert resp.status_code == status, resp.text


@pytest.mark.parametrize("where", ["body", "prompt"])
def test_deep_json_is_422(server, auth, photo_png, where):
    deep = "[" * 5000 + "]" * 5000
    if where == "body":
        resp = requests.post(
            server.url + "/v1/decompose",
            data='{"image": "x", "prompt": ' + deep + "}",
            headers={**auth, "Content-Type": "application/json"},
            timeout=60,
        )
        assert_error(resp, 422, "bad_json", "nested deeper")
    else:
        resp = post_form(server, auth, photo_png, prompt='{"box": ' + deep + "}")
        assert_error(resp, 422, "bad_prompt", "nested deeper")


def test_boolean_max_layers_is_422(server, auth, photo_png):
    body = {"image": base64.b64encode(photo_png).decode(), "max_layers": True}
    resp = requests.post(server.url + "/v1/decompose", json=body, headers=auth, timeout=60)
    assert_error(resp, 422, "bad_request", "max_layers")


def test_slow_body_is_408(server):
    """A client that sends half its body and stalls is answered 408 at the body deadline."""
    import socket
    import time

    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(
            b"POST /timeout/v1/decompose HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            b'{"image": "'
        )
        t0 = time.monotonic()
        chunks = [sock.recv(65536)]
        waited = time.monotonic() - t0
        while chunks[-1]:  # headers and body may come in separate segments; it closes after
            chunks.append(sock.recv(65536))
        reply = b"".join(chunks).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 408"), reply[:300]
    assert '"body_timeout"' in reply
    assert BODY_TIMEOUT_S - 0.5 <= waited < BODY_TIMEOUT_S + 30


def test_large_photo_comes_back_downscaled(server, auth):
    big = png_bytes(photo(800, 600))  # 480k pixels: under max_pixels, over work_pixels
    resp = post_form(server, auth, big, prompt='{"box": [300, 200, 700, 560]}', composite="true")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["input_width"], body["input_height"]) == (800, 600)
    assert body["width"] * body["height"] <= WORK_PIXELS
    assert body["width"] / body["height"] == pytest.approx(4 / 3, abs=0.01)
    assert decode_png(base64.b64decode(body["composite"])).shape[:2] == (
        body["height"],
        body["width"],
    )


def test_config_api_key_is_in_no_log(server, auth):
    """The key written in the Serve config appears neither on the console of `liwi serve`
    nor in any file Ray and Serve wrote (controller, replicas, proxy, raylet …)."""
    assert requests.get(server.url + "/v1/models", headers=auth, timeout=30).status_code == 200
    secret = API_KEY.encode()
    files = [p for p in server.ray_tmp.rglob("*") if p.is_file() and not p.is_symlink()]
    logs = [p for p in files if "logs" in p.parts]
    assert any(b"Importing application 'liwi'" in p.read_bytes() for p in logs), "no Serve log"
    leaked = [str(p) for p in [server.log, *files] if secret in p.read_bytes()]
    assert not leaked, leaked
