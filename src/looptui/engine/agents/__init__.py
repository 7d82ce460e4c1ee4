"""Agent backends behind one protocol (see `base`)."""

from __future__ import annotations

from looptui.engine.agents.base import (
    Agent,
    AgentError,
    AgentEvent,
    AgentTask,
    Finished,
    OutputLine,
    Session,
    SystemPrompt,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from looptui.engine.config import AgentConfig

__all__ = [
    "Agent",
    "AgentError",
    "AgentEvent",
    "AgentTask",
    "Finished",
    "OutputLine",
    "Session",
    "SystemPrompt",
    "Text",
    "ToolCall",
    "ToolResult",
    "Usage",
    "build_agent",
]


def build_agent(config: AgentConfig) -> Agent:
    """The backend for an agent's `kind`."""
    if config.kind == "command":
        from looptui.engine.agents.command import CommandAgent

        return CommandAgent(config)
    if config.kind == "replay":
        from looptui.engine.agents.replay import ReplayAgent

        return ReplayAgent(config)
    if config.kind == "claude-code":
        from looptui.engine.agents.claude_code import ClaudeCodeAgent

        return ClaudeCodeAgent(config)
    if config.kind == "codex":
        from looptui.engine.agents.codex import CodexAgent

        return CodexAgent(config)
    if config.kind == "anthropic":
        from looptui.engine.agents.anthropic_api import AnthropicAgent

        return AnthropicAgent(config)
    if config.kind == "openai":
        from looptui.engine.agents.openai_api import OpenAIAgent

        return OpenAIAgent(config)
    raise ValueError(f"unknown agent kind {config.kind!r}")
