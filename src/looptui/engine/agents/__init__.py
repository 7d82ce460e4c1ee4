"""Agent backends behind one protocol (see `base`)."""

from __future__ import annotations

from looptui.engine.agents.base import (
    Agent,
    AgentError,
    AgentEvent,
    AgentTask,
    Finished,
    OutputLine,
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
    raise ValueError(f"unknown agent kind {config.kind!r}")
