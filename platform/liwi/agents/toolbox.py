"""The agent's hands: builds tools from the registry and adapts arrays to their inputs.

Tools are built lazily through :func:`liwi.tools.registry.get_tool` (one instance per
``(name, backend, config)``) and set up once. The toolbox also describes the agent's
vocabulary as function schemas in the common tool-calling protocol, for the LLM policy.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from liwi.agents.base import ToolSpec
from liwi.tools.registry import AGENT_TOOLS

TOOL_NAMES = AGENT_TOOLS  # the one list, from the tool registry

# Agent-level arguments each call accepts next to the tool's own Params.
AGENT_ARGS: dict[str, dict[str, Any]] = {
    "segment": {},
    "refine_alpha": {
        "candidate": {"type": "integer", "description": "index of a selected candidate"},
        "grow_px": {
            "type": "integer",
            "minimum": 0,
            "maximum": 64,
            "description": "dilate the candidate's mask by this many px first (wider mask)",
        },
    },
    "inpaint": {
        "backend": {"type": "string", "description": "inpainting backend (default: configured)"},
    },
    "extract_shadow": {
        "candidate": {"type": "integer", "description": "index of a selected, matted candidate"},
        "skip": {"type": "boolean", "description": "drop this object's shadow (no shadow layer)"},
    },
}

ACTION_SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "select_objects",
            "description": "Choose which segment candidates become object layers, 1 or 2 "
            "(1 gives a 2-layer sample, 2 a 3-layer sample).",
            "parameters": {
                "type": "object",
                "properties": {
                    "candidates": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "minItems": 1,
                        "maxItems": 2,
                    }
                },
                "required": ["candidates"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "curate",
            "description": "Assemble the layer stack from the current mattes, background and "
            "shadows and get the curator's verdict (scores, reasons). Ends one attempt.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "finish",
            "description": "Stop working on this image; the best curated attempt is kept.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


class Toolbox:
    """Tool instances by (name, backend, config) and the array plumbing around them."""

    def __init__(
        self, specs: dict[str, ToolSpec] | None = None, extra: list[ToolSpec] | None = None
    ):
        self.specs = {name: ToolSpec() for name in TOOL_NAMES} | dict(specs or {})
        unknown = set(self.specs) - set(TOOL_NAMES) - {"verify"}
        if unknown:
            raise ValueError(f"unknown tools in config: {sorted(unknown)}")
        self.extra = list(extra or [])  # fallback inpainters: built lazily when first used
        self._tools: dict[tuple[str, str, str], Any] = {}

    def tool(self, name: str, backend: str | None = None, config: dict | None = None) -> Any:
        """The (cached) tool instance; backend/config default to the configured spec."""
        from liwi.tools.registry import get_tool

        spec = self.specs[name]
        backend = backend or spec.backend
        if config is None:
            config = spec.config if backend == spec.backend else self._config_for(name, backend)
        key = (name, backend, json.dumps(config, sort_keys=True, default=str))
        if key not in self._tools:
            self._tools[key] = get_tool(name, backend, **config)
        return self._tools[key]

    def _config_for(self, name: str, backend: str) -> dict[str, Any]:
        for spec in self.extra:
            if name == "inpaint" and spec.backend == backend:
                return dict(spec.config)
        return {}

    def default_backend(self, name: str) -> str:
        return self.specs[name].backend

    def setup(self) -> None:
        for name in TOOL_NAMES:
            self.tool(name).setup()

    def _params(self, name: str, backend: str | None, params: dict[str, Any]) -> dict[str, Any]:
        spec = self.specs[name]
        base = spec.params if (backend or spec.backend) == spec.backend else {}
        return {**base, **(params or {})}

    # -- the four tools --------------------------------------------------------------
    def segment(
        self,
        image: np.ndarray,
        params: dict[str, Any],
        args: dict[str, Any],
        saliency: np.ndarray | None = None,
    ) -> Any:
        """``saliency``: the prior's precomputed map of ``image`` (used by prior segmenters)."""
        from liwi.tools.segment import SegmentInput

        inputs = SegmentInput(image=image, box=args.get("box"), saliency=saliency)
        return self.tool("segment")(inputs, self._params("segment", None, params))

    def refine_alpha(
        self, image: np.ndarray, mask: np.ndarray, grow_px: int, params: dict[str, Any]
    ) -> Any:
        from liwi.tools.matting import MattingInput

        if grow_px > 0:
            import cv2

            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1, 2 * grow_px + 1))
            mask = cv2.dilate((mask > 0.5).astype(np.uint8), k).astype(np.float32)
        inputs = MattingInput(image=image, mask=mask)
        return self.tool("refine_alpha")(inputs, self._params("refine_alpha", None, params))

    def inpaint(
        self, image: np.ndarray, alpha: np.ndarray, backend: str, params: dict[str, Any]
    ) -> np.ndarray:
        from liwi.tools.inpaint import InpaintInput

        mask = (alpha > 0.02).astype(np.float32)  # the whole soft edge goes too
        tool = self.tool("inpaint", backend)
        return tool(
            InpaintInput(image=image, mask=mask), self._params("inpaint", backend, params)
        ).image

    def extract_shadow(
        self, image: np.ndarray, alpha: np.ndarray, background: np.ndarray, params: dict[str, Any]
    ) -> Any:
        from liwi.tools.shadow import ShadowInput

        inputs = ShadowInput(image=image, alpha=alpha, background=background)
        return self.tool("extract_shadow")(inputs, self._params("extract_shadow", None, params))

    # -- descriptions for an LLM -----------------------------------------------------
    def schemas(self) -> list[dict[str, Any]]:
        """Function schemas of the whole vocabulary: the tools' Params plus agent args."""
        out = []
        for name in TOOL_NAMES:
            schema = json.loads(json.dumps(type(self.tool(name)).json_schema()))
            fn = schema["function"]
            params = fn.setdefault("parameters", {"type": "object", "properties": {}})
            params.setdefault("properties", {}).update(AGENT_ARGS[name])
            if "candidate" in AGENT_ARGS[name]:
                params["required"] = sorted({*params.get("required", []), "candidate"})
            out.append(schema)
        return out + ACTION_SCHEMAS

    def split_arguments(self, name: str, arguments: dict[str, Any]) -> tuple[dict, dict]:
        """LLM arguments → (agent args, tool params)."""
        agent_keys = set(AGENT_ARGS.get(name, {}))
        if name not in TOOL_NAMES:
            return dict(arguments), {}
        args = {k: v for k, v in arguments.items() if k in agent_keys}
        params = {k: v for k, v in arguments.items() if k not in agent_keys}
        return args, params


def vlm_judge(config: dict[str, Any]):
    """A curator VLM judge backed by the ``verify`` tool: ``(source, stack) -> (ok, why, score)``.

    ``config`` is ``{"backend": "openai" | "clip", "params": {...}, **tool config}``. The
    tool judges the clean background (no remnant of the removed objects, no smear, no seam).
    """
    from liwi.tools.registry import get_tool

    config = dict(config)
    backend = config.pop("backend", "openai")
    params = config.pop("params", {})
    tool = get_tool("verify", backend, **config)
    tool.setup()

    def judge(source: np.ndarray, stack: Any) -> tuple[bool, str, float]:
        from liwi.tools.verify import VerifyInput

        out = tool(VerifyInput(image=stack.background), params)
        return bool(out.passed), f"background: {out.reason}", float(out.score)

    return judge
