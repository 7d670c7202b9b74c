"""The Tool contract shared by the agents, the ADD stages and the LLM policy.

A tool has

* ``name`` / ``description``: what an agent sees;
* ``Params``: a pydantic model of the JSON-able knobs an agent may set (thresholds,
  dilation radius, which backend …); ``json_schema()`` turns it into the common
  tool-calling (OpenAI-style "function") description;
* ``setup()``: loads heavy weights once per worker (idempotent, lazy);
* ``__call__(inputs, params) -> outputs``: pure with respect to its inputs; arrays are
  float32 in [0, 1] as in :mod:`liwi.layers`. Inputs/outputs are small dataclasses
  defined next to each tool, so arrays never pass through JSON.

Failures raise :class:`ToolError` with a reason the curator/agent can log.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

InT = TypeVar("InT")
OutT = TypeVar("OutT")


class ToolError(RuntimeError):
    """A tool could not produce a result for this input; the message says why."""


class ToolParams(BaseModel):
    """Base of every tool's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Tool(ABC, Generic[InT, OutT]):
    """One capability with typed parameters, lazy setup and a JSON-schema description."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[ToolParams]] = ToolParams

    def __init__(self) -> None:
        self._ready = False

    def setup(self) -> None:
        """Load heavy resources (weights, pipelines). Called once per worker; idempotent."""
        if not self._ready:
            self._setup()
            self._ready = True

    def _setup(self) -> None:  # noqa: B027 - optional hook
        """Override to load weights; the default tool needs nothing."""

    def __call__(self, inputs: InT, params: ToolParams | dict[str, Any] | None = None) -> OutT:
        self.setup()
        if params is None:
            params = self.Params()
        elif isinstance(params, dict):
            params = self.Params.model_validate(params)
        return self.run(inputs, params)

    @abstractmethod
    def run(self, inputs: InT, params: Any) -> OutT:
        """Do the work; ``params`` is an instance of ``self.Params``."""

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The tool as a function description in the common tool-calling protocol."""
        return {
            "type": "function",
            "function": {
                "name": cls.name,
                "description": cls.description,
                "parameters": cls.Params.model_json_schema(),
            },
        }
