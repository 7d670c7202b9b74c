"""End to end: `liwi serve` with the shipped model (no --model) and serve/config.yaml.

The answer's layers, recomposed with our math, must give back the uploaded photo.
Slow (a second local Ray, the real-size model), so it runs with `make test-all`.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import requests

from serving.serving_support import (
    REPO,
    decode_png,
    free_port,
    png_bytes,
    recompose,
    stop_by_pid,
    wait_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Mean absolute error (0..1) allowed between the photo and its recomposed layers.
MAX_MEAN_ERROR = 0.03


def test_liwi_serve_with_the_shipped_model(tmp_path):
    from liwi.predictor import DEFAULT_MODEL

    assert DEFAULT_MODEL.is_file(), f"the shipped model is missing: {DEFAULT_MODEL}"
    port = free_port()
    log = tmp_path / "liwi-serve.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "platform"), "RAY_ADDRESS": ""}
    env.pop("LIWI_API_KEY", None)
    cmd = [sys.executable, "-m", "liwi.cli", "serve", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready([url], proc, log, 300)
        info = requests.get(url + "/v1/models", timeout=30).json()["data"][0]
        assert info["uri"] == "default" and info["version"].startswith("sha256:")
        # A synthetic sample like the model's training data, prompted with the object's box
        # (the shipped model peels little without a prompt).
        from liwi.imageio import decode_rgb
        from liwi.synth.backgrounds import load_photos
        from liwi.synth.generator import SampleSpec, generate

        sample = generate(SampleSpec(seed=1, index=0, size=256, n_objects=1), load_photos())
        image = decode_rgb(sample.image)
        box = list(sample.stack.objects[-1].bbox)
        resp = requests.post(
            url + "/v1/decompose",
            files={"image": ("photo.png", png_bytes(image), "image/png")},
            data={"max_layers": "3", "prompt": json.dumps({"box": box}), "composite": "true"},
            timeout=120,
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["n_layers"] >= 2, body["manifest"]
        recomposed = recompose(body)
        error = float(np.abs(recomposed - image).mean())
        print(
            f"\nshipped model: {body['n_layers']} layers, mean |recomposed − photo| = {error:.4f}"
        )
        assert error <= MAX_MEAN_ERROR
        composite = decode_png(base64.b64decode(body["composite"]))
        assert np.abs(composite - recomposed).max() <= 2 / 255
    finally:
        stop_by_pid(proc, signal.SIGTERM)  # what a process manager sends
