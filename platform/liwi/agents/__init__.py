"""Agents: policies that pick tools and parameters, read the curator's verdict and retry.

:func:`build_agent` turns an :class:`~liwi.agents.base.AgentConfig` into a ready
:class:`~liwi.agents.base.Agent` (policy + toolbox + curator). Nothing heavy is imported
until a tool is set up.
"""

from __future__ import annotations

from typing import Any

from liwi.agents.base import Agent, AgentConfig, AgentResult, AgentState, Policy, ToolCall


def build_agent(config: AgentConfig | dict[str, Any] | None = None, curator_config=None) -> Agent:
    """An agent for ``config`` (a model or a plain dict, e.g. from YAML)."""
    from liwi.add.curator import Curator, CuratorConfig
    from liwi.agents.toolbox import Toolbox

    if not isinstance(config, AgentConfig):
        config = AgentConfig.model_validate(config or {})
    toolbox = Toolbox(config.tools, extra=config.inpaint_fallbacks)
    if config.policy == "llm":
        from liwi.agents.llm import LLMPolicy

        policy: Policy = LLMPolicy(config, toolbox)
    else:
        from liwi.agents.rule_based import RuleBasedPolicy

        policy = RuleBasedPolicy(config)
    curator = Curator(curator_config or CuratorConfig())
    return Agent(policy, toolbox, curator, config)


__all__ = ["Agent", "AgentConfig", "AgentResult", "AgentState", "Policy", "ToolCall", "build_agent"]
