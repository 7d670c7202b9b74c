"""``verify``: an optional vision-language check of a layer (off unless configured).

Two backends answer the same question ("is this a clean background, with no remnant of
the removed object, no smear, no seam?"):

* ``clip`` — a transformers image–text model (CLIP-like: its output has
  ``logits_per_image``) from a local folder or lake URI, scoring the image against a
  positive and a negative description (zero-shot); ``score`` = P(positive).
* ``openai`` — any OpenAI-compatible chat endpoint (``POST {endpoint}/chat/completions``)
  with the image as a base64 PNG data URL; the model answers a small JSON verdict.
  The API key is read from the environment variable named in config and never logged.

There is no classical backend: without a configured model there is nothing honest to say,
so the curator simply does not call ``verify``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from liwi.chat import ChatError, completions_url, png_data_url, post_chat
from liwi.devices import resolve_device
from liwi.tools.arrays import as_image, resize, scale_for
from liwi.tools.artifacts import artifact_dir, set_torch_threads
from liwi.tools.base import Tool, ToolError, ToolParams

DEFAULT_QUESTION = (
    "This image should be a clean background after an object was removed. Is it clean "
    "(no leftover part of the object, no smear, no visible seam or blur patch)?"
)


@dataclass
class VerifyInput:
    image: np.ndarray  # H×W×3 float32 in [0, 1]: the layer or composite to judge


@dataclass
class VerifyOutput:
    passed: bool  # the verdict
    score: float  # confidence that the image is fine, in [0, 1]
    reason: str  # short explanation (model text or the scores)
    backend: str  # "clip" or "openai"


class ClipVerifyParams(ToolParams):
    positive: str = Field(
        "a clean photo of an empty background", description="description of a good image"
    )
    negative: str = Field(
        "a photo with a smeared remnant of a removed object",
        description="description of a bad image",
    )
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="pass when P(positive) ≥ this")


class ClipVerifier(Tool[VerifyInput, VerifyOutput]):
    """Zero-shot image–text scoring with a local transformers model."""

    name = "verify"
    description = (
        "Ask a vision-language model whether an image (usually the cleaned background) "
        "looks right; returns pass/fail, a confidence and a reason."
    )
    Params = ClipVerifyParams
    backend = "clip"

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        cache_dir: str | None = None,
        num_threads: int | None = None,
    ) -> None:
        """``model``: a transformers folder (local path or lake URI) with model + processor."""
        super().__init__()
        self.model_uri = model
        self.device = device
        self.cache_dir = cache_dir
        self.num_threads = num_threads
        self.model: Any = None
        self.processor: Any = None

    def _setup(self) -> None:
        if not self.model_uri:
            raise ToolError("clip verify needs a model folder (local path or lake URI)")
        set_torch_threads(self.num_threads)
        folder = artifact_dir(self.model_uri, self.cache_dir)
        from transformers import AutoModel, AutoProcessor

        try:
            self.processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
            model = AutoModel.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:  # missing files, unknown architecture
            raise ToolError(f"cannot load verify model from {self.model_uri}: {exc}") from exc
        self.device = resolve_device(self.device)  # the actor's GPUs, not the driver's
        self.model = model.to(self.device).eval()

    def run(self, inputs: VerifyInput, params: ClipVerifyParams) -> VerifyOutput:
        import torch

        image = as_image(inputs.image)
        img8 = (image * 255 + 0.5).astype(np.uint8)
        batch = self.processor(
            text=[params.positive, params.negative], images=img8, return_tensors="pt", padding=True
        ).to(self.device)
        with torch.inference_mode():
            out = self.model(**batch)
        logits = getattr(out, "logits_per_image", None)
        if logits is None:
            raise ToolError(
                f"{type(self.model).__name__} gives no logits_per_image (not CLIP-like)"
            )
        p = torch.softmax(logits[0].float(), dim=0)[0].item()
        return VerifyOutput(
            passed=p >= params.threshold,
            score=float(p),
            reason=f"P({params.positive!r}) = {p:.3f} vs {params.negative!r}",
            backend=self.backend,
        )


class ChatVerifyParams(ToolParams):
    question: str = Field(DEFAULT_QUESTION, description="what the model is asked about the image")
    max_side: int = Field(512, ge=64, le=2048, description="image sent at most this many px")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="sampling temperature")
    max_tokens: int = Field(200, ge=16, le=4096, description="longest answer")


SYSTEM_PROMPT = (
    "You check images for a photo-editing pipeline. Answer only with JSON: "
    '{"verdict": "pass" or "fail", "confidence": number 0..1, "reason": short text}.'
)


def parse_verdict(text: str) -> tuple[bool, float, str]:
    """(passed, confidence that it passed, reason) from the model's answer."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match:
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and str(data.get("verdict", "")).lower() in ("pass", "fail"):
            passed = str(data["verdict"]).lower() == "pass"
            try:
                conf = float(np.clip(float(data.get("confidence", 1.0)), 0.0, 1.0))
            except (TypeError, ValueError):
                conf = 1.0
            return passed, conf if passed else 1.0 - conf, str(data.get("reason", ""))[:500]
    word = text.strip().lower()
    if word.startswith(("pass", "yes")):
        return True, 1.0, text.strip()[:500]
    if word.startswith(("fail", "no")):
        return False, 0.0, text.strip()[:500]
    raise ToolError(f"could not read a verdict from the model's answer: {text[:200]!r}")


class ChatVerifier(Tool[VerifyInput, VerifyOutput]):
    """A VLM behind any OpenAI-compatible ``/chat/completions`` endpoint."""

    name = "verify"
    description = ClipVerifier.description
    Params = ChatVerifyParams
    backend = "openai"

    def __init__(
        self,
        endpoint: str | None = None,
        model: str = "default",
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
    ) -> None:
        """``endpoint``: base URL such as ``http://127.0.0.1:8000/v1``; ``model``: the model
        name the server expects; ``api_key_env``: variable holding the key (optional)."""
        super().__init__()
        self.endpoint = endpoint
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s

    def _setup(self) -> None:
        if not self.endpoint:
            raise ToolError("openai verify needs an endpoint URL")
        if not self.endpoint.startswith(("http://", "https://")):
            raise ToolError(f"endpoint must be an http(s) URL, got {self.endpoint!r}")

    @property
    def url(self) -> str:
        return completions_url(self.endpoint or "")

    def run(self, inputs: VerifyInput, params: ChatVerifyParams) -> VerifyOutput:
        image = as_image(inputs.image)
        s = scale_for(image.shape, params.max_side)
        if s < 1.0:
            image = resize(
                image, (max(8, round(image.shape[0] * s)), max(8, round(image.shape[1] * s)))
            )
        body = {
            "model": self.model,
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": params.question},
                        {"type": "image_url", "image_url": {"url": png_data_url(image)}},
                    ],
                },
            ],
        }
        answer = self._post(body)
        try:
            text = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ToolError(
                f"unexpected response shape from {self.url}: {str(answer)[:200]}"
            ) from exc
        if isinstance(text, list):  # content parts
            text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
        passed, score, reason = parse_verdict(str(text))
        return VerifyOutput(passed=passed, score=score, reason=reason, backend=self.backend)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return post_chat(self.endpoint or "", body, self.api_key_env, self.timeout_s)
        except ChatError as exc:
            raise ToolError(str(exc)) from exc
