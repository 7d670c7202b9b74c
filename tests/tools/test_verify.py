"""verify: CLIP zero-shot with a tiny random model; chat backend against a real local server."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from liwi.testing.chat_server import ChatServer, assistant_reply
from liwi.tools.base import ToolError
from liwi.tools.verify import ChatVerifier, ClipVerifier, VerifyInput, parse_verdict

IMAGE = np.random.default_rng(0).random((48, 64, 3)).astype(np.float32)


# -- CLIP ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            image_size=32,
            patch_size=8,
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
        ),
        projection_dim=8,
    )
    path = tmp_path_factory.mktemp("clip") / "tiny-clip"
    CLIPModel(config).save_pretrained(path)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(path)
    return path


def test_clip_scores_match_the_model(clip_dir):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    tool = ClipVerifier(model=str(clip_dir))
    out = tool(VerifyInput(IMAGE))
    assert out.backend == "clip" and 0.0 < out.score < 1.0
    assert out.passed == (out.score >= 0.5)
    # the same probability computed by hand from the saved model
    model, proc = CLIPModel.from_pretrained(clip_dir), CLIPProcessor.from_pretrained(clip_dir)
    p = tool.Params()
    batch = proc(
        text=[p.positive, p.negative],
        images=(IMAGE * 255 + 0.5).astype(np.uint8),
        return_tensors="pt",
        padding=True,
    )
    with torch.no_grad():
        expected = torch.softmax(model(**batch).logits_per_image[0], 0)[0].item()
    assert out.score == pytest.approx(expected, abs=1e-5)
    assert tool(VerifyInput(IMAGE), {"threshold": 0.0}).passed
    assert not tool(VerifyInput(IMAGE), {"threshold": 1.0}).passed
    swapped = tool(VerifyInput(IMAGE), {"positive": p.negative, "negative": p.positive})
    assert swapped.score == pytest.approx(1.0 - out.score, abs=1e-5)


def test_clip_needs_a_real_model_folder(tmp_path):
    with pytest.raises(ToolError, match="needs a model folder"):
        ClipVerifier().setup()
    with pytest.raises(ToolError, match="not found"):
        ClipVerifier(model=str(tmp_path / "nope")).setup()
    with pytest.raises(ToolError, match="cannot load"):
        ClipVerifier(model=str(tmp_path)).setup()


# -- OpenAI-compatible chat endpoint ----------------------------------------------------


CANNED = '```json\n{"verdict": "fail", "confidence": 0.8, "reason": "smear left of centre"}\n```'


class FakeVLM:
    """What the chat server answers: a canned verdict, or an error status."""

    def __init__(self) -> None:
        self.answer, self.status = CANNED, 200

    def __call__(self, body):
        if self.status != 200:
            return self.status, {"error": {"message": "model overloaded"}}
        return 200, assistant_reply(self.answer)


@pytest.fixture
def vlm():
    return FakeVLM()


@pytest.fixture
def chat(vlm):
    with ChatServer(vlm) as server:
        yield server


def test_chat_request_shape_and_verdict(chat, monkeypatch):
    monkeypatch.setenv("LIWI_TEST_VLM_KEY", "sk-test")
    tool = ChatVerifier(endpoint=chat.url, model="tiny-vlm", api_key_env="LIWI_TEST_VLM_KEY")
    big = np.zeros((600, 900, 3), np.float32)
    out = tool(VerifyInput(big), {"max_side": 300})
    assert (out.passed, out.backend) == (False, "openai")
    assert out.score == pytest.approx(0.2) and "smear" in out.reason
    request = chat.requests[-1]
    body = request.body
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "tiny-vlm" and body["temperature"] == 0.0
    system, user = body["messages"]
    assert system["role"] == "system" and "JSON" in system["content"]
    text, img = user["content"]
    assert text["type"] == "text" and "clean" in text["text"]
    url = img["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (300, 200)


def test_chat_errors_have_reasons(chat, vlm):
    vlm.status = 503
    with pytest.raises(ToolError, match="HTTP 503.*overloaded"):
        ChatVerifier(endpoint=chat.url, api_key_env=None)(VerifyInput(IMAGE))
    assert "Authorization" not in chat.requests[-1].headers
    vlm.status = 200
    vlm.answer = "I am not sure what you mean."
    with pytest.raises(ToolError, match="could not read a verdict"):
        ChatVerifier(endpoint=chat.url)(VerifyInput(IMAGE))
    with pytest.raises(ToolError, match="cannot reach"):
        ChatVerifier(endpoint="http://127.0.0.1:9/v1", timeout_s=2)(VerifyInput(IMAGE))
    with pytest.raises(ToolError, match="needs an endpoint"):
        ChatVerifier()(VerifyInput(IMAGE))


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"verdict": "pass", "confidence": 0.9, "reason": "clean"}', (True, 0.9, "clean")),
        ('Sure! {"verdict": "FAIL", "reason": "seam"} hope it helps', (False, 0.0, "seam")),
        ("Pass. Looks clean.", (True, 1.0, "Pass. Looks clean.")),
        ("no, there is a hand left", (False, 0.0, "no, there is a hand left")),
    ],
)
def test_parse_verdict(text, expected):
    passed, score, reason = parse_verdict(text)
    assert passed == expected[0]
    assert score == pytest.approx(expected[1])
    assert reason == expected[2]
