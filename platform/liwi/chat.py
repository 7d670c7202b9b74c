"""One client for OpenAI-style ``/chat/completions`` endpoints, and one PNG data-URL encoder.

Used by the LLM agent policy (:mod:`liwi.agents.llm`) and the VLM ``verify`` tool
(:mod:`liwi.tools.verify`). The bearer token comes from the environment variable named by
the caller and is never logged. Standard library only (plus Pillow for the PNG).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from typing import Any

import numpy as np


class ChatError(RuntimeError):
    """The endpoint could not be reached or did not answer JSON."""


def png_data_url(image: np.ndarray, max_side: int | None = None) -> str:
    """``data:image/png;base64,…`` of an image (float in [0, 1] or uint8).

    With ``max_side`` the longer side is shrunk to at most that many pixels (never grown).
    """
    from liwi.imageio import encode_png, to_uint8

    pixels = to_uint8(image)
    if max_side is not None and max(pixels.shape[:2]) > max_side:
        from PIL import Image

        img = Image.fromarray(pixels)
        img.thumbnail((max_side, max_side))
        pixels = np.asarray(img)
    return "data:image/png;base64," + base64.b64encode(encode_png(pixels)).decode("ascii")


def completions_url(endpoint: str) -> str:
    """``<endpoint>/chat/completions`` (kept as is when the endpoint already ends so)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def post_chat(
    endpoint: str, body: dict[str, Any], api_key_env: str | None, timeout_s: float
) -> dict[str, Any]:
    """POST ``body`` to the endpoint's chat completions; the JSON answer, else :class:`ChatError`."""
    url = completions_url(endpoint)
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:200]
        raise ChatError(f"{url} answered HTTP {exc.code}: {detail}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ChatError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChatError(f"{url} did not answer JSON: {exc}") from exc
