"""Shared pieces of the serving tests: limits of the test app, synthetic photos, PNG codecs."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import requests

from liwi.layers import multiply, over
from liwi.synth.procedural import Placement, procedural_scene

REPO = Path(__file__).resolve().parents[2]

# Unique per run: the log-redaction test greps Ray's and Serve's logs for it.
API_KEY = f"test-key-{uuid.uuid4().hex}"
# Limits of the ``liwi`` test app: small, so the tests can cross them cheaply.
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 1_000_000
WORK_PIXELS = 250_000  # larger photos come back downscaled
BODY_TIMEOUT_S = 3  # the ``timeout`` app's body deadline (slow-client test)


def disc(cx: float, cy: float, r: float, width: int, height: int, color) -> Placement:
    """A hard-edged disc of radius ``r`` px centred at ``(cx·width, cy·height)``."""
    return Placement(cx, cy + r / height, r / width, r / height, color=color, soft=1.0)


def photo(
    width: int = 96, height: int = 80, seed: int = 0, extra: Sequence[Placement] = ()
) -> np.ndarray:
    """A small 'photo' from the scene generator: a red disc and its shadow on a textured
    floor (seen from above), then any ``extra`` objects in front."""
    red = disc(0.45, 0.45, min(width, height) * 0.22, width, height, (0.85, 0.2, 0.15))
    stack = procedural_scene(seed, (height, width), objects=[red, *extra], horizon=0.0, texture=0.1)
    return stack.composite()


def png_bytes(arr: np.ndarray) -> bytes:
    from liwi.imageio import encode_png

    return encode_png(arr)


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.float32) / 255.0


def layer_rgba(layer: dict, width: int, height: int) -> np.ndarray:
    """A cropped JSON layer on the full canvas as straight-alpha RGBA (PIL + numpy only).

    Mode L is a grey shadow's attenuation S: the multiply layer black with alpha 1 − S.
    """
    px = decode_png(base64.b64decode(layer["png"]))
    assert px.shape[:2] == (layer["height"], layer["width"]), (px.shape, layer["name"])
    if layer["mode"] == "L":
        px = np.dstack([np.zeros(px.shape + (3,), np.float32), 1.0 - px])
    elif layer["mode"] == "RGB":
        px = np.dstack([px[..., :3], np.ones(px.shape[:2], np.float32)])
    out = np.zeros((height, width, 4), np.float32)
    x, y = layer["x"], layer["y"]
    out[y : y + px.shape[0], x : x + px.shape[1]] = px
    return out


def recompose(body: dict) -> np.ndarray:
    """Composite the returned (cropped) layer PNGs back to front with liwi.layers' math."""
    out = None
    for layer in body["layers"]:
        px = layer_rgba(layer, body["width"], body["height"])
        if layer["kind"] == "background":
            out = px[..., :3]
        elif layer["blend"] == "multiply":
            out = multiply(out, px[..., :3], px[..., 3])
        else:
            out = over(out, px[..., :3], px[..., 3])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(urls: list[str], proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(urls)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"liwi serve exited with {proc.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout_s}s: {pending}\n{tail(log)}")
        try:
            if requests.get(pending[0] + "/readyz", timeout=5).status_code == 200:
                pending.pop(0)
                continue
        except requests.RequestException:
            pass
        time.sleep(0.5)


def tail(path: Path, n: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


# How long `liwi serve` may take to shut Serve and its Ray down after a stop signal (a
# quiet machine: 3-15 s; generous for a loaded 2-core one).
STOP_TIMEOUT_S = 60


def stop_by_pid(proc: subprocess.Popen, signum: int = signal.SIGINT) -> None:
    """Stop ``liwi serve`` as a person or a process manager would: ``signum`` (SIGINT is
    Ctrl-C, SIGTERM a ``kill``), then SIGKILL if it hangs; then SIGKILL what is left of its
    process group (started with ``start_new_session=True``): Ray's dashboard and
    runtime-env agents can outlive a driver that was interrupted alone, as a terminal's
    Ctrl-C (which signals the whole foreground group) would not leave them.

    Fails (after the cleanup) when the server needed the SIGKILL or did not exit with the
    code a shell reports for ``signum``: a server that ignores its stop signal is a bug the
    SIGKILL would otherwise hide."""
    hung = False
    if proc.poll() is None:
        proc.send_signal(signum)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            hung = True
            proc.kill()
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # only the group this test's server leads
    name = signal.Signals(signum).name
    assert not hung, f"liwi serve did not stop within {STOP_TIMEOUT_S} s of {name}"
    assert proc.returncode == 128 + signum, f"liwi serve exited {proc.returncode} after {name}"
