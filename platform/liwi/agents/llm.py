"""An LLM policy speaking the common (OpenAI-style) tool-calling protocol.

Each turn POSTs ``{model, messages, tools, tool_choice: "auto"}`` to
``<endpoint>/chat/completions``. ``tools`` are the function schemas of the agent's
vocabulary (the four tools' JSON-schema Params plus the agent arguments, and the
``select_objects`` / ``curate`` / ``finish`` actions). Every ``tool_calls`` entry of the
reply is executed by the :class:`~liwi.agents.base.Agent`; its JSON observation goes back
as a ``role: tool`` message with the matching ``tool_call_id``. A reply without tool
calls, a ``finish`` call, ``max_steps`` calls or ``max_attempts`` curations end the
episode. The bearer token (if any) comes from the environment variable named in config
and is never logged.
"""

from __future__ import annotations

import json
from typing import Any

from liwi.agents.base import AgentConfig, AgentState, ToolCall
from liwi.agents.toolbox import Toolbox
from liwi.chat import ChatError, completions_url, png_data_url, post_chat

SYSTEM_PROMPT = """You decompose one photograph into editable layers: a clean background, \
one or two object layers (normal blend) and, per object, a shadow layer (multiply blend). \
The photo must equal the composite: I = a*F + (1-a)*(B*S).
Work with the tools: segment (find candidates), select_objects (1 candidate gives a 2-layer \
sample, 2 candidates a 3-layer sample), refine_alpha (per selected candidate), inpaint \
(removes all selected objects), extract_shadow (per selected candidate, back to front; \
skip=true drops a doubtful shadow), then curate to get the curator's verdict.
If the verdict fails, read its reasons and failures and retry differently: another \
candidate, a wider mask (grow_px), another inpainting method or radius, or dropping a \
shadow. Call finish when the verdict passes or nothing else is worth trying."""


class LLMError(RuntimeError):
    """The endpoint could not be reached or answered something we cannot use."""


class LLMPolicy:
    """Asks a chat-completions endpoint for the next tool calls."""

    name = "llm"

    def __init__(self, config: AgentConfig, toolbox: Toolbox) -> None:
        self.config = config
        self.llm = config.llm
        self.toolbox = toolbox
        self.messages: list[dict[str, Any]] = []
        self._tools: list[dict[str, Any]] | None = None
        self.requests = 0

    @property
    def tools(self) -> list[dict[str, Any]]:
        if self._tools is None:
            self._tools = self.toolbox.schemas()
        return self._tools

    def reset(self, state: AgentState) -> None:
        h, w = state.image.shape[:2]
        task = {
            "task": "decompose this photo into layers",
            "image": {"width": w, "height": h, "sample_id": state.sample_id},
            "max_objects": self.config.max_objects,
            "max_attempts": self.config.max_attempts,
        }
        content: Any = json.dumps(task)
        if self.llm.send_image:
            content = [
                {"type": "text", "text": content},
                {
                    "type": "image_url",
                    "image_url": {"url": png_data_url(state.image, self.llm.image_side)},
                },
            ]
        self.messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": content},
        ]

    def observe(self, call: ToolCall, observation: dict[str, Any]) -> None:
        """The agent reports each executed call; it goes back as a tool message."""
        self.messages.append(
            {
                "role": "tool",
                "tool_call_id": call.call_id or call.name,
                "content": json.dumps(observation, default=str),
            }
        )

    def next_calls(self, state: AgentState) -> list[ToolCall]:
        reply = self.complete()
        message = reply["choices"][0]["message"]
        tool_calls = message.get("tool_calls") or []
        self.messages.append(
            {"role": "assistant", "content": message.get("content"), "tool_calls": tool_calls}
        )
        calls = []
        for tc in tool_calls:
            fn = tc.get("function") or {}
            name = fn.get("name", "")
            raw = fn.get("arguments") or "{}"
            try:
                arguments = json.loads(raw) if isinstance(raw, str) else dict(raw)
            except json.JSONDecodeError as exc:
                arguments = {"_unparseable": f"{exc}"}
            args, params = self.toolbox.split_arguments(name, arguments)
            calls.append(ToolCall(name, args, params, call_id=tc.get("id")))
        return calls

    def complete(self) -> dict[str, Any]:
        """One chat-completions request; raises :class:`LLMError` on transport errors."""
        body = {
            "model": self.llm.model,
            "messages": self.messages,
            "tools": self.tools,
            "tool_choice": "auto",
            "temperature": self.llm.temperature,
        }
        self.requests += 1
        try:
            reply = post_chat(self.llm.endpoint, body, self.llm.api_key_env, self.llm.timeout_s)
        except ChatError as exc:
            raise LLMError(str(exc)) from exc
        url = completions_url(self.llm.endpoint)
        if not isinstance(reply, dict) or not reply.get("choices"):
            raise LLMError(f"{url} answered without choices")
        return reply
