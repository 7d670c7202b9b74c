"""Request parsing and validation without a server (fast): every path to an ApiError."""

from __future__ import annotations

import base64
import json
import pickle

import numpy as np
import pytest

from liwi.serving.requests import (
    ApiError,
    b64decode,
    decode_image,
    job_from_form,
    job_from_json,
    parse_max_layers,
    parse_prompt,
)
from liwi.serving.schemas import PromptIn
from liwi.serving.settings import ServeAppArgs
from serving.serving_support import photo, png_bytes

SETTINGS = ServeAppArgs(max_pixels=10_000, max_layers_limit=5)
PNG = png_bytes(photo(96, 80))


def test_json_job_decodes_image_prompt_and_defaults():
    body = json.dumps(
        {"image": base64.b64encode(PNG).decode(), "prompt": {"box": [1, 2, 30, 40]}}
    ).encode()
    job = job_from_json(body, SETTINGS)
    assert job.image.shape == (80, 96, 3) and job.image.dtype == np.uint8
    assert np.abs(job.image / 255.0 - photo(96, 80)).max() <= 1 / 255
    assert job.prompt.box == (1.0, 2.0, 30.0, 40.0)
    assert job.max_layers == SETTINGS.default_max_layers and job.format == "json"


def test_form_job_reads_text_fields():
    job = job_from_form(PNG, '{"points": [[5, 6]]}', "2", "psd", SETTINGS)
    assert job.prompt.points == [(5.0, 6.0)] and job.max_layers == 2 and job.format == "psd"


def test_empty_prompt_is_no_prompt():
    assert parse_prompt(PromptIn(), (10, 10)) is None
    assert job_from_form(PNG, "null", None, None, SETTINGS).prompt is None


def test_base64_variants():
    raw = b"\x00\xff\xfe binary"
    std = base64.b64encode(raw).decode()
    assert b64decode(std, "x") == raw
    assert b64decode(base64.urlsafe_b64encode(raw).decode().rstrip("="), "x") == raw
    assert b64decode("data:image/png;base64," + std, "x") == raw
    assert b64decode(std[:8] + "\n" + std[8:], "x") == raw
    with pytest.raises(ApiError) as err:
        b64decode("@@@", "image")
    assert err.value.status == 422 and err.value.code == "bad_base64"


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (png_bytes(np.zeros((101, 100, 3))), 413, "image_too_large"),
        (b"GIF89a junk", 422, "undecodable_image"),
        (PNG[:100], 422, "undecodable_image"),
        (png_bytes(np.zeros((7, 50, 3))), 422, "image_too_small"),
    ],
)
def test_image_errors(data, status, code):
    with pytest.raises(ApiError) as err:
        decode_image(data, SETTINGS.max_pixels)
    assert (err.value.status, err.value.code) == (status, code)


def test_pixel_limit_is_checked_before_decoding():
    """A 'bomb' PNG header claiming 100k×100k pixels is refused from its header alone."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    with pytest.raises(ApiError) as err:
        decode_image(bomb, 16_000_000)
    assert err.value.status == 413


@pytest.mark.parametrize("value", [0, 6, -1, "x", 2.5, 2.0, "2.0", True, "true", [2]])
def test_bad_max_layers(value):
    with pytest.raises(ApiError) as err:
        parse_max_layers(value, SETTINGS)
    assert err.value.status == 422 and err.value.code == "bad_max_layers"


@pytest.mark.parametrize(("value", "expected"), [(None, 3), ("", 3), ("4", 4), (" 2 ", 2), (1, 1)])
def test_good_max_layers(value, expected):
    assert parse_max_layers(value, SETTINGS) == expected


@pytest.mark.parametrize(
    "prompt",
    [
        {"box": [0, 0, 10, float("nan")]},
        {"box": [5, 5, 5, 9]},
        {"box": [0, 0, 11, 10]},
        {"points": [[10, 0]]},
        {"points": [[1]]},
    ],
)
def test_bad_prompts(prompt):
    with pytest.raises(ApiError) as err:
        parse_prompt(PromptIn.model_validate(prompt), (10, 10))
    assert err.value.status == 422 and err.value.code == "bad_prompt"


def test_mask_prompt_must_match_image_size():
    mask = base64.b64encode(png_bytes(np.ones((10, 10), np.float32))).decode()
    assert parse_prompt(PromptIn(mask=mask), (10, 10)).mask.shape == (10, 10)
    with pytest.raises(ApiError, match="the image 12×10"):
        parse_prompt(PromptIn(mask=mask), (12, 10))


def test_api_error_survives_pickling():
    """Ray ships exceptions between processes: status, code and headers must survive."""
    err = pickle.loads(pickle.dumps(ApiError(503, "overloaded", "busy", {"Retry-After": "2"})))
    assert (err.status, err.code, err.message, err.headers) == (
        503,
        "overloaded",
        "busy",
        {"Retry-After": "2"},
    )


# -- issue 15: depth, strict types, downscaled photos --------------------------------------


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [17, 3000, 100_000])
def test_deep_json_body_is_422_not_a_recursion_error(depth):
    body = '{"image": "x", "prompt": {"box": ' + _deep(depth) + "}}"
    with pytest.raises(ApiError) as err:
        job_from_json(body.encode(), SETTINGS)
    assert (err.value.status, err.value.code) == (422, "bad_json")
    assert "nested deeper than" in err.value.message


@pytest.mark.parametrize("depth", [17, 3000])
def test_deep_prompt_field_is_422(depth):
    with pytest.raises(ApiError) as err:
        job_from_form(PNG, '{"points": ' + _deep(depth) + "}", None, None, SETTINGS)
    assert (err.value.status, err.value.code) == (422, "bad_prompt")


@pytest.mark.parametrize(
    "field",
    [
        {"max_layers": True},
        {"max_layers": 2.0},
        {"max_layers": "2"},
        {"format": 1},
        {"prompt": {"box": [1, 2, True, 4]}},
        {"prompt": {"points": [["1", 2]]}},
        {"prompt": {"mask": 5}},
    ],
)
def test_json_fields_are_strictly_typed(field):
    body = json.dumps({"image": base64.b64encode(PNG).decode(), **field}).encode()
    with pytest.raises(ApiError) as err:
        job_from_json(body, SETTINGS)
    assert err.value.status == 422 and err.value.code == "bad_request", err.value.message


def test_large_photo_is_downscaled_with_its_prompt():
    settings = ServeAppArgs(max_pixels=1_000_000, work_pixels=30_000, max_layers_limit=5)
    big = png_bytes(photo(400, 300))
    mask = np.zeros((300, 400), np.float32)
    mask[150:, 200:] = 1.0
    prompt = {
        "box": [200, 150, 400, 300],
        "points": [[300, 225]],
        "mask": base64.b64encode(png_bytes(mask)).decode(),
    }
    job = job_from_form(big, json.dumps(prompt), None, None, settings)
    assert job.image.shape == (150, 200, 3) and job.input_size == (400, 300)
    assert job.prompt.box == (100.0, 75.0, 200.0, 150.0)
    assert job.prompt.points == [(150.0, 112.5)]
    assert job.prompt.mask.shape == (150, 200)
    assert job.prompt.mask[:75].max() == 0 and job.prompt.mask[75:, 100:].min() == 1
    job.prompt.validate(150, 200)
    with pytest.raises(ApiError, match="lies outside the 400×300 image"):
        job_from_form(big, '{"box": [0, 0, 401, 10]}', None, None, settings)


def test_method_defaults_to_model_and_takes_prior():
    image = base64.b64encode(PNG).decode()
    assert job_from_json(json.dumps({"image": image}).encode(), SETTINGS).method == "model"
    job = job_from_json(json.dumps({"image": image, "method": "prior"}).encode(), SETTINGS)
    assert job.method == "prior"
    assert job_from_form(PNG, None, None, None, SETTINGS, "prior").method == "prior"


@pytest.mark.parametrize(
    ("value", "words"),
    [("add", "liwi predict --method add"), ("ADD", "expected model or prior"), ("x", "'x'")],
)
def test_unserved_methods_are_422(value, words):
    with pytest.raises(ApiError) as err:
        job_from_form(PNG, None, None, None, SETTINGS, value)
    assert err.value.status == 422 and err.value.code == "bad_method"
    assert words in err.value.message


def test_prior_none_means_no_prior():
    assert ServeAppArgs(prior="none").resolved_prior() is None
    assert ServeAppArgs(prior=None).resolved_prior() is None
    assert ServeAppArgs().resolved_prior() == "u2netp-liwi"
    assert ServeAppArgs(prior="s3://lake/w/u2net.onnx").resolved_prior() == "s3://lake/w/u2net.onnx"
