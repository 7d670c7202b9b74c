"""The one chat-completions client and PNG data-URL encoder."""

import base64

import numpy as np
import pytest

from liwi.chat import ChatError, completions_url, png_data_url, post_chat
from liwi.imageio import decode_rgb


def test_png_data_url_round_trips_and_shrinks_only_when_asked():
    image = np.random.default_rng(0).random((20, 40, 3)).astype(np.float32)
    url = png_data_url(image)
    assert url.startswith("data:image/png;base64,")
    back = decode_rgb(base64.b64decode(url.split(",", 1)[1]))
    np.testing.assert_allclose(back, np.round(image * 255) / 255, atol=1 / 255)
    small = decode_rgb(base64.b64decode(png_data_url(image, max_side=10).split(",", 1)[1]))
    assert small.shape == (5, 10, 3)
    assert png_data_url(image, max_side=100) == url  # never grown


def test_completions_url_appends_once():
    assert completions_url("http://h/v1/") == "http://h/v1/chat/completions"
    assert completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


def test_unreachable_endpoint_is_a_chat_error():
    with pytest.raises(ChatError, match="cannot reach"):
        post_chat("http://127.0.0.1:9", {"model": "m"}, None, timeout_s=2)
