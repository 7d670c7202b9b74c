"""Tool registry: ``(name, backend) → Tool`` with lazy imports, and the agents' schemas.

>>> seg = get_tool("segment", "salient")                        # pretrained U²-Netp prior
>>> classic = get_tool("segment")                               # classical, no weights
>>> sam = get_tool("segment", "sam2", checkpoint="s3://models/sam2.1_hiera_t.pt")
>>> inp = get_tool("inpaint", "diffusers", model="/models/sd-inpaint")

Classical backends take no config; model-backed ones take their adapter's keyword
arguments (see each class). Nothing heavy is imported until a tool is built, and no
weights load until its first call (or ``setup()``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from liwi.tools.base import Tool, ToolError

# name → backend → "module:Class". The first backend listed is the default.
TOOLS: dict[str, dict[str, str]] = {
    "segment": {
        "salient": "liwi.tools.segment_salient:SalientSegmenter",
        "classical": "liwi.tools.segment:ClassicalSegmenter",
        "sam2": "liwi.tools.segment_sam2:Sam2Segmenter",
    },
    "refine_alpha": {
        "classical": "liwi.tools.matting:AlphaRefiner",
    },
    "inpaint": {
        "classical": "liwi.tools.inpaint:ClassicalInpainter",
        "diffusers": "liwi.tools.inpaint_diffusers:DiffusersInpainter",
    },
    "extract_shadow": {
        "classical": "liwi.tools.shadow:ShadowExtractor",
        # wraps the predictor, so it lives with the agents (room 2), not among the tools
        "model": "liwi.agents.shadow_tool:ModelShadowExtractor",
    },
    "verify": {  # optional, off by default: needs a model folder or an endpoint
        "clip": "liwi.tools.verify:ClipVerifier",
        "openai": "liwi.tools.verify:ChatVerifier",
    },
}

# The tools of the decomposition chain, in the order an agent calls them: the one list
# the agents and their toolbox use (verify needs a model or an endpoint: opt-in).
AGENT_TOOLS: tuple[str, ...] = ("segment", "refine_alpha", "inpaint", "extract_shadow")
# Backends an agent gets when nothing else is configured: the pretrained U²-Netp prior
# segments first (classical candidates appended as fallbacks), the rest is classical.
DEFAULT_BACKENDS: dict[str, str] = {name: "classical" for name in AGENT_TOOLS} | {
    "segment": "salient"
}


def available() -> dict[str, list[str]]:
    """Every tool name with its backends."""
    return {name: list(backends) for name, backends in TOOLS.items()}


def tool_class(name: str, backend: str = "classical") -> type[Tool]:
    """The class implementing ``name`` with ``backend`` (imported on demand)."""
    if name not in TOOLS:
        raise ToolError(f"unknown tool {name!r}; known: {', '.join(TOOLS)}")
    backends = TOOLS[name]
    if backend not in backends:
        raise ToolError(
            f"tool {name!r} has no backend {backend!r}; choose one of: {', '.join(backends)}"
        )
    module, cls_name = backends[backend].split(":")
    return getattr(importlib.import_module(module), cls_name)


def get_tool(name: str, backend: str = "classical", **config: Any) -> Tool:
    """Build a tool; ``config`` goes to the adapter (checkpoint/model paths, device …)."""
    cls = tool_class(name, backend)
    try:
        return cls(**config)
    except TypeError as exc:
        raise ToolError(f"bad config for {name}/{backend}: {exc}") from exc


def tool_schemas(backends: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Function descriptions (common tool-calling protocol) for the configured tools.

    ``backends`` maps tool name → backend (default :data:`DEFAULT_BACKENDS`); a tool left
    out is not offered. Each schema's parameters are that backend's ``Params``.
    """
    chosen = dict(DEFAULT_BACKENDS if backends is None else backends)
    return [tool_class(name, backend).json_schema() for name, backend in chosen.items()]
